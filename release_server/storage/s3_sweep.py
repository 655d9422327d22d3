"""Cleaning a bucket of what no one needs: multipart uploads of dead processes, blobs no
key points to any more, and old holds.

No lock is needed across replicas. A blob goes only when (1) it was listed, (2) a later
listing of the pointers shows nothing pointing to it, and (3) a still later listing of
the holds shows no hold on it younger than GRACE_S, and the blob itself is older than
that. Whoever makes a blob unreferenced (replace, delete) holds it *before* changing the
pointer, an upload holds its blob before completing it, and a reader renews its hold
while it reads: so whatever the order of events, a blob still in use is never taken.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable
from datetime import datetime

from .s3_client import Bucket, S3Error
from .s3_io import BLOBS, HOLDS

#: How long an unreferenced blob, or a hold, stays (readers renew holds far more often).
GRACE_S = 15 * 60.0
#: A multipart upload begun this long ago belongs to a process that died.
STALE_UPLOAD_S = 24 * 3600.0


def age(stamp: datetime, now: float) -> float:
    return now - stamp.timestamp()


def abort_stale_uploads(bucket: Bucket, older_than: float, now: float) -> list[str]:
    """Abort multipart uploads of blobs begun more than ``older_than`` seconds ago."""
    aborted = []
    kwargs = {"Prefix": bucket.key(BLOBS)}
    while True:
        page = bucket.call("list_multipart_uploads", **kwargs)
        for upload in page.get("Uploads", ()):
            if age(upload["Initiated"], now) > older_than:
                with contextlib.suppress(S3Error):
                    bucket.call(
                        "abort_multipart_upload", Key=upload["Key"], UploadId=upload["UploadId"]
                    )
                    aborted.append(f"upload of {upload['Key']}")
        if not page.get("IsTruncated"):
            return aborted
        kwargs["KeyMarker"] = page.get("NextKeyMarker", "")
        kwargs["UploadIdMarker"] = page.get("NextUploadIdMarker", "")


def sweep(
    bucket: Bucket,
    referenced: Callable[[], Iterable[str]],
    *,
    grace: float = GRACE_S,
    stale_upload: float = STALE_UPLOAD_S,
) -> list[str]:
    """Remove what is no longer needed; returns what was removed. Blocks.

    ``referenced`` lists every blob some key points to *now* (it is called after the
    blobs are listed and before the holds are)."""
    now = time.time()
    removed = abort_stale_uploads(bucket, stale_upload, now)
    blobs, _ = bucket.entries(BLOBS)
    in_use = set(referenced())
    holds, _ = bucket.entries(HOLDS)
    held = {h["Key"].removeprefix(HOLDS) for h in holds if age(h["LastModified"], now) <= grace}
    for blob in blobs:
        name = blob["Key"].removeprefix(BLOBS)
        if name in in_use or name in held or age(blob["LastModified"], now) <= grace:
            continue
        with contextlib.suppress(S3Error):
            bucket.delete(blob["Key"])
            removed.append(f"unreferenced {blob['Key']}")
    for item in holds:
        if age(item["LastModified"], now) > grace:
            with contextlib.suppress(S3Error):
                bucket.delete(item["Key"])
    return removed
