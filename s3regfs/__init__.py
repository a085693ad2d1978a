"""s3regfs: a Docker/OCI registry's S3 bucket as a local filesystem.

This module owns only the version string.
"""

__version__ = "0.1.0"
