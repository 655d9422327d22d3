"""Uploads, downloads, deletes and the listing, through HTTP against the real server."""

from __future__ import annotations

import hashlib
import os
import socket

import pytest
import requests
from conftest import BOTH_BACKENDS, DIRECTORY_ONLY, TOKEN, ServerProcess, stored_names

pytestmark = BOTH_BACKENDS


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def test_multipart_upload_answers_package_json(server: ServerProcess) -> None:
    response = server.upload("tool-1.0.tar.gz", b"payload")
    assert response.status_code == 200
    body = response.json()
    assert body["name"] == "tool-1.0.tar.gz"
    assert body["size"] == 7
    assert body["sha256"] == sha(b"payload")
    assert body["created_at"].endswith("Z")
    assert body["url"] == f"{server.url}/assets/tool-1.0.tar.gz"
    assert body["pruned"] == []
    assert stored_names(server) == ["tool-1.0.tar.gz"]
    assert requests.get(body["url"], timeout=10).content == b"payload"


def test_put_creates_201_then_replaces_200(server: ServerProcess) -> None:
    url = f"{server.url}/assets/app.zip"
    created = requests.put(url, data=b"one", headers=server.auth(), timeout=10)
    assert created.status_code == 201
    assert created.headers["location"] == url
    taken = requests.put(url, data=b"two", headers=server.auth(), timeout=10)
    assert taken.status_code == 409
    assert "overwrite=true" in taken.json()["detail"]
    replaced = requests.put(
        url, data=b"two", headers=server.auth(), params={"overwrite": "true"}, timeout=10
    )
    assert replaced.status_code == 200
    assert requests.get(url, timeout=10).content == b"two"


def test_upload_existing_name_is_409_and_keeps_old_bytes(server: ServerProcess) -> None:
    assert server.upload("a.bin", b"first").status_code == 200
    response = server.upload("a.bin", b"second")
    assert response.status_code == 409
    assert set(response.json()) == {"detail", "message"}
    assert requests.get(f"{server.url}/assets/a.bin", timeout=10).content == b"first"
    assert server.upload("a.bin", b"second", overwrite="true").status_code == 200
    assert requests.get(f"{server.url}/assets/a.bin", timeout=10).content == b"second"
    assert stored_names(server) == ["a.bin"]


@pytest.mark.parametrize(
    "headers",
    [{}, {"Authorization": "Bearer wrong"}, {"Authorization": f"Basic {TOKEN}"}],
    ids=["missing", "wrong", "not-bearer"],
)
def test_writes_need_the_token(server: ServerProcess, headers: dict[str, str]) -> None:
    requests.put(f"{server.url}/assets/keep.txt", data=b"k", headers=server.auth(), timeout=10)
    answers = [
        requests.post(
            f"{server.url}/upload", files={"file": ("x.txt", b"x")}, headers=headers, timeout=10
        ),
        requests.put(f"{server.url}/assets/x.txt", data=b"x", headers=headers, timeout=10),
        requests.delete(f"{server.url}/assets/keep.txt", headers=headers, timeout=10),
    ]
    for answer in answers:
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")
        assert answer.json()["detail"]
    assert stored_names(server) == ["keep.txt"]


def test_no_token_configured_reads_work_writes_explain(start_server) -> None:
    server = start_server(token=None)
    assert requests.get(f"{server.url}/packages", timeout=10).status_code == 200
    response = requests.put(
        f"{server.url}/assets/x.txt", data=b"x", headers=server.auth("anything"), timeout=10
    )
    assert response.status_code == 401
    assert "AUTH_TOKEN" in response.json()["detail"]
    assert any('"warning"' in line and "AUTH_TOKEN" in line for line in server.lines)


def test_delete(server: ServerProcess) -> None:
    server.upload("gone.txt", b"bye")
    url = f"{server.url}/assets/gone.txt"
    assert requests.delete(url, headers=server.auth(), timeout=10).status_code == 204
    assert requests.get(url, timeout=10).status_code == 404
    assert requests.delete(url, headers=server.auth(), timeout=10).status_code == 404
    assert stored_names(server) == []
    if server.s3 is None:
        assert os.listdir(server.storage / ".meta") == []


def test_missing_file_field_and_not_multipart_are_400(server: ServerProcess) -> None:
    no_file = requests.post(
        f"{server.url}/upload", files={"other": ("x", b"x")}, headers=server.auth(), timeout=10
    )
    assert no_file.status_code == 400
    assert "file" in no_file.json()["detail"]
    not_form = requests.post(f"{server.url}/upload", data=b"raw", headers=server.auth(), timeout=10)
    assert not_form.status_code == 400
    truncated = requests.post(
        f"{server.url}/upload",
        data=b'--b\r\nContent-Disposition: form-data; name="file"; filename="t.txt"\r\n\r\nabc',
        headers={**server.auth(), "Content-Type": "multipart/form-data; boundary=b"},
        timeout=10,
    )
    assert truncated.status_code == 400
    assert stored_names(server) == []


def test_checksum_header_and_field(server: ServerProcess) -> None:
    good = requests.put(
        f"{server.url}/assets/ok.bin",
        data=b"data",
        headers={**server.auth(), "X-Checksum-Sha256": sha(b"data")},
        timeout=10,
    )
    assert good.status_code == 201
    bad = requests.put(
        f"{server.url}/assets/bad.bin",
        data=b"data",
        headers={**server.auth(), "X-Checksum-Sha256": sha(b"other")},
        timeout=10,
    )
    assert bad.status_code == 422
    assert "sha256" in bad.json()["detail"]
    field_bad = requests.post(
        f"{server.url}/upload",
        files={"file": ("f.bin", b"data")},
        data={"sha256": sha(b"nope")},
        headers=server.auth(),
        timeout=10,
    )
    assert field_bad.status_code == 422
    field_good = requests.post(
        f"{server.url}/upload",
        files={"file": ("f.bin", b"data")},
        data={"sha256": "sha256:" + sha(b"data")},
        headers=server.auth(),
        timeout=10,
    )
    assert field_good.status_code == 200
    malformed = requests.put(
        f"{server.url}/assets/m.bin",
        data=b"data",
        headers={**server.auth(), "X-Checksum-Sha256": "xyz"},
        timeout=10,
    )
    assert malformed.status_code == 400
    assert stored_names(server) == ["f.bin", "ok.bin"]


def test_checksum_mismatch_on_overwrite_keeps_previous_version(server: ServerProcess) -> None:
    server.upload("v.bin", b"old")
    bad = requests.put(
        f"{server.url}/assets/v.bin",
        params={"overwrite": "true"},
        data=b"new",
        headers={**server.auth(), "X-Checksum-Sha256": sha(b"other")},
        timeout=10,
    )
    assert bad.status_code == 422
    assert requests.get(f"{server.url}/assets/v.bin", timeout=10).content == b"old"


def test_bad_overwrite_value_is_400(server: ServerProcess) -> None:
    response = server.upload("x.bin", b"x", overwrite="perhaps")
    assert response.status_code == 400
    assert "overwrite" in response.json()["detail"]


def test_max_upload_size(start_server) -> None:
    server = start_server(env={"MAX_UPLOAD_SIZE": "1K"})
    assert server.upload("small.bin", b"x" * 1024).status_code == 200
    declared = requests.put(
        f"{server.url}/assets/big.bin", data=b"x" * 4096, headers=server.auth(), timeout=10
    )
    assert declared.status_code == 413
    assert "MAX_UPLOAD_SIZE" in declared.json()["detail"]
    multipart = server.upload("big2.bin", b"x" * 1025)
    assert multipart.status_code == 413
    assert stored_names(server) == ["small.bin"]


def test_max_upload_size_without_content_length(start_server) -> None:
    """A chunked body declares no length: the limit is enforced as the bytes arrive."""
    server = start_server(env={"MAX_UPLOAD_SIZE": "64K"})

    def chunks():
        for _ in range(4):
            yield b"y" * 32 * 1024

    try:
        response = requests.put(
            f"{server.url}/assets/chunked.bin", data=chunks(), headers=server.auth(), timeout=10
        )
        assert response.status_code == 413
    except requests.ConnectionError:
        pass  # the server may close the connection while the client is still sending
    assert stored_names(server) == []
    ok = requests.put(
        f"{server.url}/assets/fits.bin",
        data=iter([b"z" * 1024] * 8),
        headers=server.auth(),
        timeout=10,
    )
    assert ok.status_code == 201
    assert requests.get(f"{server.url}/assets/fits.bin", timeout=10).content == b"z" * 8192


INVALID_NAMES = {
    "dot": ".",
    "dotdot": "..",
    "hidden": ".hidden",
    "slash-traversal": "../escape.txt",
    "backslash": "a\\b.txt",
    "nul": "a\x00b",
    "newline": "a\nb",
    "tab": "a\tb",
    "del": "a\x7fb",
    "too-long": "x" * 256,
    "too-long-utf8": "é" * 128,
}


@pytest.mark.parametrize("name", INVALID_NAMES.values(), ids=INVALID_NAMES.keys())
def test_invalid_names_are_400_everywhere(server: ServerProcess, name: str) -> None:
    quoted = requests.utils.quote(name, safe="")
    upload = requests.post(
        f"{server.url}/upload",
        files={"file": (name, b"x")},
        headers=server.auth(),
        timeout=10,
    )
    assert upload.status_code == 400, upload.text
    raw = f"{server.url}/assets/{quoted}"
    with requests.Session() as session:
        for method in ("PUT", "GET", "DELETE"):
            prepared = requests.Request(method, raw, data=b"x", headers=server.auth()).prepare()
            prepared.url = raw  # keep %2E%2E and friends as sent
            answer = session.send(prepared, timeout=10)
            assert answer.status_code == 400, (method, answer.status_code, answer.text)
            assert "name" in answer.json()["detail"]
    assert stored_names(server) == []
    assert not (server.storage.parent / "escape.txt").exists()


def test_longest_valid_name_and_unicode(server: ServerProcess) -> None:
    for name in ("x" * 255, "é" * 127 + "x", "spëc kït (1) [β].zip", "日本語.tar.gz"):
        response = server.upload(name, name.encode())
        assert response.status_code == 200, response.text
        download = requests.get(response.json()["url"], timeout=10)
        assert download.content == name.encode()


def test_packages_negotiation(server: ServerProcess) -> None:
    server.upload("n.txt", b"n")
    url = f"{server.url}/packages"
    as_json = requests.get(url, timeout=10)
    assert as_json.headers["content-type"].startswith("application/json")
    assert [p["name"] for p in as_json.json()] == ["n.txt"]
    browser = "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8"
    cases = [
        ({"Accept": browser}, None, "text/html"),
        ({"Accept": "application/json"}, None, "application/json"),
        ({"Accept": "*/*"}, None, "application/json"),
        ({"Accept": "application/json;q=0.5, text/html"}, None, "text/html"),
        ({"Accept": "text/html;q=0.4, application/json"}, None, "application/json"),
        ({"Accept": browser}, "json", "application/json"),
        ({"Accept": "application/json"}, "html", "text/html"),
    ]
    for headers, fmt, expected in cases:
        params = {"format": fmt} if fmt else None
        response = requests.get(url, headers=headers, params=params, timeout=10)
        assert response.status_code == 200
        assert response.headers["content-type"].startswith(expected), (headers, fmt)
    wrong = requests.get(url, params={"format": "xml"}, timeout=10)
    assert wrong.status_code == 422
    assert "format" in wrong.json()["detail"]


def test_health_ready_openapi_and_home(server: ServerProcess) -> None:
    for path in ("/healthz", "/health", "/readyz"):
        response = requests.get(server.url + path, timeout=10)
        assert (response.status_code, response.text) == (200, "OK")
    contract = requests.get(f"{server.url}/openapi.yaml", timeout=10)
    assert contract.status_code == 200
    assert b"/latest" in contract.content
    home = requests.get(server.url + "/", allow_redirects=False, timeout=10)
    assert home.status_code == 200, home.text
    assert home.json()["root"]["html_url"] == f"{server.url}/packages"


@DIRECTORY_ONLY("directory permissions")
def test_readyz_reports_unwritable_storage(server: ServerProcess) -> None:
    if os.geteuid() == 0:
        pytest.skip("root ignores directory permissions, so storage cannot be made unwritable")
    os.chmod(server.storage, 0o500)
    try:
        response = requests.get(f"{server.url}/readyz", timeout=10)
        assert response.status_code == 503
        assert "storage" in response.text
    finally:
        os.chmod(server.storage, 0o700)


def test_unknown_route_is_json_404(server: ServerProcess) -> None:
    response = requests.get(f"{server.url}/nope", timeout=10)
    assert response.status_code == 404
    assert response.json()["detail"]
    missing = requests.get(f"{server.url}/assets/absent.zip", timeout=10)
    assert missing.status_code == 404
    assert "absent.zip" in missing.json()["message"]


def test_empty_uploads_are_422_and_keep_the_previous_version(server: ServerProcess) -> None:
    """A 0-byte package is almost always a broken build: refused on both write paths,
    nothing stored, the good version it would have replaced intact."""
    assert server.upload("app.zip", b"good").status_code == 200
    refusals = [
        server.upload("app.zip", b"", overwrite="true"),
        server.upload("new.zip", b""),
        requests.put(f"{server.url}/assets/app.zip?overwrite=true", data=b"",
                     headers=server.auth(), timeout=10),
        requests.put(f"{server.url}/assets/new.zip", data=b"", headers=server.auth(), timeout=10),
    ]  # fmt: skip
    for refused in refusals:
        assert refused.status_code == 422, refused.text
        assert "empty" in refused.json()["detail"]
    assert requests.get(f"{server.url}/assets/app.zip", timeout=10).content == b"good"
    assert [p["name"] for p in requests.get(f"{server.url}/packages", timeout=10).json()] == [
        "app.zip"
    ]
    assert stored_names(server) == ["app.zip"]  # no temporary file left either


def test_absolute_form_request_target_is_routed_on_its_path(server: ServerProcess) -> None:
    """What a client sends through a forward proxy (RFC 9112 §3.2.2): routed on the path."""
    server.upload("proxied.zip", b"p")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        target = f"http://127.0.0.1:{server.port}/assets/proxied.zip?x=1"
        sock.sendall(
            f"GET {target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n".encode()
        )
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    assert answer.endswith(b"\r\n\r\np")
