"""``stat_tree`` of the s3 driver: a lookup, and a small directory's whole subtree, in one LIST.

Owns the one-request lookup (docs/DRIVERS.md, extension 7): ``ListObjectsV2`` with
``Prefix=key`` (no delimiter, at most ``limit + 1`` keys) answers what ``stat`` answers with a
HEAD and, for a directory, a second LIST:

* the key itself is listed: a file (size, time and ETag as HeadObject gives them; the file wins
  over keys below it, as in ``stat``);
* keys below ``key/``: a directory; when every key below it was in the answer (the answer is
  complete, or it reached keys sorting after ``key/``), their FileInfos are its subtree;
* neither, and the answer is complete or reached past ``key/``: nothing is there.

Keys of siblings that share the prefix (``key-1``, ``key.txt``) sort before ``key/``; when they
fill the answer before it gets there, the lookup falls back to ``stat`` (HEAD, then a LIST), as it
does when the LIST is refused (403: a policy allowing HEAD but not LIST).  The completeness test
holds in byte order and in SeaweedFS's directory-tree order alike (a name's subtree comes before
every longer name).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import botocore.exceptions

from s3regfs.driver.base import ZERO_TIME, FileInfo, FirstFiles
from s3regfs.driver.errors import PathNotFoundError
from s3regfs.driver.s3.errors import http_status, map_error

if TYPE_CHECKING:  # the driver imports this module: types only, no import cycle at run time
    from s3regfs.driver.s3.driver import S3Driver


def stat_tree(driver: S3Driver, path: str, limit: int) -> tuple[FileInfo, list[FileInfo] | None]:
    """The FileInfo of ``path`` and, for a directory of at most ``limit`` files, every file below it."""
    if path == "/" or limit < 1:
        return driver.stat(path), None
    key = driver.s3_path(path)
    try:
        resp = driver.client.list_objects_v2(Bucket=driver.bucket, Prefix=key, MaxKeys=limit + 1)
    except botocore.exceptions.ClientError as exc:
        if http_status(exc) == 403:  # a policy that allows HEAD but not LIST: the usual stat
            return driver.stat(path), None
        raise map_error(path, exc) from exc
    objects: list[dict[str, Any]] = resp.get("Contents", [])
    below = key + "/"
    complete = not resp.get("IsTruncated")
    if not complete and objects:
        last = objects[-1]["Key"]
        complete = len(last) > len(key) and last[len(key)] > "/"  # past every key below key/
    files: list[FileInfo] = []
    is_dir = False
    for obj in objects:
        name = obj["Key"]
        if name == key:
            return FileInfo(path, int(obj["Size"]), obj["LastModified"], False, obj.get("ETag")), None
        if not name.startswith(below):
            continue
        is_dir = True
        if name.endswith("/"):
            continue  # a folder placeholder: the directory exists, it is no file
        child = driver.child_path(name)
        if child is not None:
            files.append(FileInfo(child, int(obj["Size"]), obj["LastModified"], False, obj.get("ETag")))
    if is_dir:
        below_files = files if complete and len(files) <= limit else FirstFiles(files)  # the LIST stopped
        return FileInfo(path, 0, ZERO_TIME, True), below_files
    if complete:
        raise PathNotFoundError(path)
    return driver.stat(path), None  # siblings filled the answer before key/: ask the usual way
