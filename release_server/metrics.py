"""Prometheus metrics in the text exposition format, by hand (standard library only).

Counters live in each process. With ``--workers N`` every worker also writes its counters
to a directory the CLI makes for that server (``share``), at most a second behind, and a
scrape answers the sum over all workers, so whichever worker answers, the counters never
go backwards. Package count and stored bytes come from storage, the same for every worker.
"""

from __future__ import annotations

import bisect
import contextlib
import json
import os
import threading
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

from . import __version__
from .package import Package

#: Upper bounds (seconds) of the request-duration histogram buckets.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
_BOUNDS = tuple(f"{bound:g}" for bound in BUCKETS)
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"))
EVENTS = {
    "response_bytes": "Bytes sent in response bodies.",
    "downloads": "Completed package downloads.",
    "uploads": "Packages stored by uploads.",
    "upload_bytes": "Bytes stored by uploads.",
    "deletes": "Packages deleted through the API.",
    "pruned": "Packages removed by retention.",
}
#: Where the CLI tells its workers to share counters (unset: this process alone).
SHARE_ENV = "RELEASE_SERVER_METRICS_DIR"

#: A series: its kind first ("requests", "bucket", "sum", "count", "event"), then labels.
Key = tuple[str, ...]


def _labels(**labels: str) -> str:
    escaped = (
        f'{key}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for key, value in labels.items()
    )
    return "{" + ",".join(escaped) + "}"


class Metrics:
    """Counters and a latency histogram, updated by the access log and the services."""

    def __init__(self, share: Path | None = None) -> None:
        self._lock = threading.Lock()
        self.values: dict[Key, float] = defaultdict(float)
        self.share = share
        self._dirty = False

    def observe_request(
        self, method: str, route: str, status: int, sent: int, seconds: float
    ) -> None:
        """Record one request. Labels come from fixed sets (a made-up method is OTHER; an
        unrouted path is "unmatched"), so clients cannot add series."""
        method = method if method in METHODS else "OTHER"
        with self._lock:
            self.values[("requests", route, method, str(status))] += 1
            self.values[("event", "response_bytes")] += sent
            self.values[("sum", route)] += seconds
            self.values[("count", route)] += 1
            index = bisect.bisect_left(BUCKETS, seconds)
            if index < len(BUCKETS):  # only its own bucket: render() adds them up
                self.values[("bucket", route, _BOUNDS[index])] += 1
            self._dirty = True

    def count(self, event: str, amount: int = 1) -> None:
        """Add to one of EVENTS."""
        with self._lock:
            self.values[("event", event)] += amount
            self._dirty = True

    # -- sharing between workers ---------------------------------------------------------------

    def flush(self) -> None:
        """Write this process's counters for the other workers, if they changed. Blocks."""
        if self.share is None or not self._dirty:
            return
        with self._lock:
            snapshot = [[list(key), value] for key, value in self.values.items()]
            self._dirty = False
        path = self.share / f"{os.getpid()}.json"
        temporary = path.with_suffix(".tmp")
        with contextlib.suppress(OSError):
            temporary.write_text(json.dumps(snapshot))
            os.replace(temporary, path)

    def totals(self) -> dict[Key, float]:
        """Every worker's counters added up (this process's alone when not shared)."""
        if self.share is None:
            with self._lock:
                return defaultdict(float, self.values)
        self.flush()
        total: dict[Key, float] = defaultdict(float)
        with contextlib.suppress(OSError):
            for path in self.share.glob("*.json"):
                with contextlib.suppress(OSError, ValueError):
                    for key, value in json.loads(path.read_text()):
                        total[tuple(key)] += value
        return total

    # -- rendering -----------------------------------------------------------------------------

    def render(self, packages: Iterable[Package]) -> str:
        """All metrics as Prometheus text; gauges from the current listing. Blocks."""
        packages = list(packages)
        values = self.totals()
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> str:
            full = f"release_server_{name}"
            out.extend((f"# HELP {full} {help_text}", f"# TYPE {full} {kind}"))
            return full

        def number(value: float) -> str:
            return str(int(value)) if float(value).is_integer() else f"{value:.6f}"

        name = family("info", "gauge", "Version of this server.")
        out.append(f"{name}{_labels(version=__version__)} 1")
        name = family("requests_total", "counter", "HTTP requests by route, method, status.")
        for key in sorted(k for k in values if k[0] == "requests"):
            _, route, method, status = key
            labels = _labels(route=route, method=method, status=status)
            out.append(f"{name}{labels} {number(values[key])}")
        name = family("request_duration_seconds", "histogram", "Request latency.")
        for route in sorted(k[1] for k in values if k[0] == "count"):
            count = 0.0
            for bound in _BOUNDS:
                count += values[("bucket", route, bound)]
                out.append(f"{name}_bucket{_labels(route=route, le=bound)} {number(count)}")
            total = number(values[("count", route)])
            out.append(f"{name}_bucket{_labels(route=route, le='+Inf')} {total}")
            out.append(f"{name}_sum{_labels(route=route)} {values[('sum', route)]:.6f}")
            out.append(f"{name}_count{_labels(route=route)} {total}")
        for event, help_text in EVENTS.items():
            name = family(f"{event}_total", "counter", help_text)
            out.append(f"{name} {number(values[('event', event)])}")
        name = family("packages", "gauge", "Packages in storage.")
        out.append(f"{name} {len(packages)}")
        name = family("stored_bytes", "gauge", "Bytes of packages in storage.")
        out.append(f"{name} {sum(p.size for p in packages)}")
        return "\n".join(out) + "\n"
