"""Views: other namespaces over the same bucket, as read-only wrapper drivers.

Owns nothing but the package; :mod:`s3regfs.view.layout` reads the registry's storage layout
and :mod:`s3regfs.view.oci` shows every repository as an OCI image layout (``-o view=oci``,
docs/VIEWS.md).  A view is a :class:`~s3regfs.driver.wrapper.DriverWrapper` on top of the
whole driver chain, so the filesystem core, its caches, readahead and the
``user.s3regfs.url`` xattr work on it unchanged.
"""

VIEWS = ("raw", "oci")
"""The values of the ``view`` option: ``raw`` (the bucket as it is, the default) and ``oci``."""
