"""The s3 driver package (registers ``s3`` and ``s3aws``)."""
