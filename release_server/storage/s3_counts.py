"""Download counts on a bucket: each process writes its own counter object, readers add
them all up. No two processes ever write the same object, so no count is lost to a race;
a total may lag by the flush delay plus the listing's lifetime (about a second)."""

from __future__ import annotations

import contextlib
import json
import os
import socket
import threading
import uuid
from collections import Counter

from .s3_client import Bucket, Missing, S3Error

COUNTS = ".downloads/"


def replica_id() -> str:
    """Unique per process, readable in a bucket listing (host, pid, a random suffix)."""
    host = "".join(c if c.isalnum() or c in "-_" else "-" for c in socket.gethostname())
    return f"{host[:40] or 'host'}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


class Counts:
    """This process's counts (flushed to ``.downloads/<replica>.json``) and everyone's."""

    def __init__(self, bucket: Bucket, replica: str) -> None:
        self.bucket = bucket
        self.name = f"{COUNTS}{replica}.json"
        self._lock = threading.Lock()
        self._mine: Counter[str] = Counter()
        self._dirty = False
        self._seen: dict[str, tuple[str, dict[str, int]]] = {}

    def add(self, version: str) -> None:
        with self._lock:
            self._mine[version] += 1
            self._dirty = True

    def flush(self) -> None:
        """Write this process's counts if they changed. Blocks."""
        with self._lock:
            if not self._dirty:
                return
            data = json.dumps(dict(self._mine), separators=(",", ":")).encode()
            self._dirty = False
        try:
            self.bucket.put_bytes(self.name, data)
        except S3Error:
            with self._lock:
                self._dirty = True
            raise

    def totals(self) -> Counter[str]:
        """Completed downloads per blob, summed over every process's counter object."""
        objects, _ = self.bucket.entries(COUNTS)
        seen: dict[str, tuple[str, dict[str, int]]] = {}
        total: Counter[str] = Counter()
        for item in objects:
            key, etag = item["Key"], item.get("ETag", "")
            if key == self.name:
                continue
            known = self._seen.get(key)
            if known is None or known[0] != etag:
                known = (etag, self._read(key))
            seen[key] = known
            total.update(known[1])
        self._seen = seen
        with self._lock:
            total.update(self._mine)
        return total

    def _read(self, key: str) -> dict[str, int]:
        with contextlib.suppress(Missing, ValueError):
            data, _ = self.bucket.get_bytes(key)
            counts = json.loads(data)
            if isinstance(counts, dict):
                return {k: v for k, v in counts.items() if isinstance(v, int)}
        return {}
