"""Prometheus metrics in the text exposition format, by hand (standard library only).

Counters live in each process: with ``--workers N`` a scrape sees one worker's counters,
so prefer one worker per pod and more replicas. Package count and stored bytes come from
the storage directory, so they are the same whichever process answers.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from collections.abc import Iterable

from . import __version__
from .package import Package

#: Upper bounds (seconds) of the request-duration histogram buckets.
BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


EVENTS = {
    "response_bytes": "Bytes sent in response bodies.",
    "downloads": "Completed package downloads.",
    "uploads": "Packages stored by uploads.",
    "upload_bytes": "Bytes stored by uploads.",
    "deletes": "Packages deleted through the API.",
    "pruned": "Packages removed by retention.",
}


def _labels(**labels: str) -> str:
    escaped = (
        f'{key}="{value.replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
        for key, value in labels.items()
    )
    return "{" + ",".join(escaped) + "}"


class Metrics:
    """Counters and a latency histogram, updated by the access log and the routes."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter[tuple[str, str, str]] = Counter()
        self.duration_buckets: Counter[tuple[str, float]] = Counter()
        self.duration_sum: dict[str, float] = defaultdict(float)
        self.duration_count: Counter[str] = Counter()
        self.events: Counter[str] = Counter()

    def observe_request(
        self, method: str, route: str, status: int, sent: int, seconds: float
    ) -> None:
        with self._lock:
            self.requests[(route, method, str(status))] += 1
            self.events["response_bytes"] += sent
            self.duration_sum[route] += seconds
            self.duration_count[route] += 1
            for bound in BUCKETS:
                if seconds <= bound:
                    self.duration_buckets[(route, bound)] += 1

    def count(self, event: str, amount: int = 1) -> None:
        """Add to one of EVENTS."""
        with self._lock:
            self.events[event] += amount

    def render(self, packages: Iterable[Package]) -> str:
        """All metrics as Prometheus text; gauges from the current listing."""
        packages = list(packages)
        out: list[str] = []

        def family(name: str, kind: str, help_text: str) -> str:
            full = f"release_server_{name}"
            out.extend((f"# HELP {full} {help_text}", f"# TYPE {full} {kind}"))
            return full

        with self._lock:
            name = family("info", "gauge", "Version of this server.")
            out.append(f"{name}{_labels(version=__version__)} 1")
            name = family("requests_total", "counter", "HTTP requests by route, method, status.")
            for (route, method, status), count in sorted(self.requests.items()):
                out.append(f"{name}{_labels(route=route, method=method, status=status)} {count}")
            name = family("request_duration_seconds", "histogram", "Request latency.")
            for route in sorted(self.duration_count):
                for bound in BUCKETS:
                    count = self.duration_buckets[(route, bound)]
                    out.append(f"{name}_bucket{_labels(route=route, le=f'{bound:g}')} {count}")
                total = self.duration_count[route]
                out.append(f"{name}_bucket{_labels(route=route, le='+Inf')} {total}")
                out.append(f"{name}_sum{_labels(route=route)} {self.duration_sum[route]:.6f}")
                out.append(f"{name}_count{_labels(route=route)} {total}")
            for event, help_text in EVENTS.items():
                name = family(f"{event}_total", "counter", help_text)
                out.append(f"{name} {self.events[event]}")
        name = family("packages", "gauge", "Packages in storage.")
        out.append(f"{name} {len(packages)}")
        name = family("stored_bytes", "gauge", "Bytes of packages in storage.")
        out.append(f"{name} {sum(p.size for p in packages)}")
        return "\n".join(out) + "\n"
