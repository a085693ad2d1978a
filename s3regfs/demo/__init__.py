"""``s3regfs demo`` and the local S3 server it runs on.

* :mod:`s3regfs.demo.command`: the ``s3regfs demo`` command (its sequence and clean-up);
* :mod:`s3regfs.demo.registry`: the small real registry it writes into the bucket;
* :mod:`s3regfs.demo.localserver`: a local S3 server (SeaweedFS on loopback), also
  used by the tests and the benchmark.

Importing the package loads none of them (the server and the demo need the ``demo`` extra).
"""
