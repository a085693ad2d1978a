"""The filesystem: POSIX semantics over a StorageDriver (``core``) and the mfusepy adapter (``operations``)."""
