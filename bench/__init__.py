"""The side-by-side benchmark: boto3, s3regfs, s3fs-fuse and rclone mount on one local S3 server.

Run it with ``python bench/run.py`` (see docs/PERFORMANCE.md). Modules:

* :mod:`bench.system`: the machine, tool versions, page-cache drop, peak RSS, timing;
* :mod:`bench.tools`: boto3 as the ceiling and the three FUSE mounts (start, wait, stop);
* :mod:`bench.workloads`: the measurements;
* :mod:`bench.report`: medians, ratios, the Markdown table and the chart;
* :mod:`bench.run`: the command line and the order of the run.
"""
