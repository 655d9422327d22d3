"""/metrics in Prometheus text format, black-box."""

from __future__ import annotations

import re

import requests
from conftest import ServerProcess


def sample(text: str, name: str, **labels: str) -> float:
    """The value of one sample; labels given must all match."""
    for line in text.splitlines():
        if line.startswith("#") or not line.startswith(name):
            continue
        match = re.fullmatch(r"([a-z_]+)(\{.*\})? (\S+)", line)
        if not match or match.group(1) != name:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(2) or ""))
        if all(found.get(k) == v for k, v in labels.items()):
            return float(match.group(3))
    raise AssertionError(f"no sample {name} {labels} in:\n{text}")


def test_metrics_count_requests_transfers_and_storage(start_server) -> None:
    server: ServerProcess = start_server(env={"MAX_PACKAGES": "2"})
    for name in ("a.bin", "b.bin", "c.bin"):
        assert server.upload(name, b"x" * 100).status_code == 200
    requests.get(f"{server.url}/assets/c.bin", timeout=10)
    requests.get(f"{server.url}/assets/missing.bin", timeout=10)
    requests.delete(f"{server.url}/assets/b.bin", headers=server.auth(), timeout=10)
    response = requests.get(f"{server.url}/metrics", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    text = response.text
    route = "/assets/{filename:anytext}"
    assert sample(text, "release_server_requests_total", route="/upload", status="200") == 3
    assert sample(text, "release_server_requests_total", route=route, status="404") == 1
    assert sample(text, "release_server_requests_total", route=route, method="DELETE") == 1
    assert sample(text, "release_server_uploads_total") == 3
    assert sample(text, "release_server_upload_bytes_total") == 300
    assert sample(text, "release_server_pruned_total") == 1
    assert sample(text, "release_server_deletes_total") == 1
    assert sample(text, "release_server_downloads_total") == 1
    assert sample(text, "release_server_response_bytes_total") >= 100
    assert sample(text, "release_server_packages") == 1
    assert sample(text, "release_server_stored_bytes") == 100
    count = sample(text, "release_server_request_duration_seconds_count", route="/upload")
    inf = sample(text, "release_server_request_duration_seconds_bucket", route="/upload", le="+Inf")
    assert count == inf == 3
    assert "# TYPE release_server_request_duration_seconds histogram" in text


def test_unmatched_paths_share_one_label(server: ServerProcess) -> None:
    for path in ("/x1", "/x2", "/x3"):
        requests.get(server.url + path, timeout=10)
    text = requests.get(f"{server.url}/metrics", timeout=10).text
    assert sample(text, "release_server_requests_total", route="unmatched", status="404") == 3
    assert "/x1" not in text
