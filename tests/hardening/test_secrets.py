"""Secrets and escaping: the token never shows up in logs, errors or pages; package names
with HTML are inert on the page; an uploaded .html or .svg is never rendered inline.
"""

from __future__ import annotations

import base64
import hashlib
import os
import signal
import subprocess
import time
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import quote, unquote

import pytest
import requests
from conftest import ROOT, ServerProcess, StartServer, default_command

from .helpers import Reply, bearer, put_raw, request, sha256

pytestmark = pytest.mark.hardening

#: The shortest token the server accepts (16 characters) and a long one. Neither can
#: appear by chance in hex request ids or digests.
TOKENS = ("Qz7-tok-sixteen!", "release-Token-9Qx7-never-shown")


def raw_text(reply: Reply | None) -> str:
    assert reply is not None
    headers = "\n".join(f"{name}: {value}" for name, value in reply.headers.items())
    return f"{reply.status}\n{headers}\n\n{reply.body.decode('latin-1')}"


@pytest.mark.parametrize("token", TOKENS, ids=["short", "long"])
def test_token_never_appears_in_logs_answers_or_pages(
    start_server: StartServer, tmp_path: Path, token: str
) -> None:
    """Every route, every error (wrong tokens close to the right one, bad names, bad forms,
    checksum mismatch, too large, an internal error) at LOG_LEVEL=debug."""
    server = start_server(
        token=token, env={"LOG_LEVEL": "debug", "MAX_UPLOAD_SIZE": "100K", "MAX_PACKAGES": "2"}
    )
    port, right = server.port, bearer(token)
    near_misses = [token[:-1], token + "x", token.upper(), token.swapcase(), token[1:]]
    answers: list[Reply | None] = [
        put_raw(port, token, "first.bin", b"one"),
        put_raw(port, token, "first.bin", b"one"),  # 409
        put_raw(port, token, "first.bin", b"two", overwrite=True),
        put_raw(port, token, "second.bin", b"x" * 200_000),  # 413
        put_raw(port, token, "third.bin", b"3"),
        put_raw(port, token, "fourth.bin", b"4"),  # prunes
        put_raw(port, token, ".hidden", b"x"),  # 400
        put_raw(port, token, "%2e%2e%2fescape", b"x"),  # 400
        request(port, "PUT", "/assets/sum.bin", [right, ("X-Checksum-Sha256", "0" * 64)], b"x"),
        request(port, "PUT", "/assets/sum.bin", [right, ("X-Checksum-Sha256", "nope")], b"x"),
        request(port, "POST", "/upload", [right, ("Content-Type", "text/plain")], b"x"),
        request(port, "POST", "/upload", [right, ("Content-Type", "multipart/form-data")], b"x"),
        request(port, "DELETE", "/assets/third.bin", [right]),
        request(port, "DELETE", "/assets/missing.bin", [right]),
        # It used to be an internal error (test_range_with_a_huge_number_is_not_a_500).
        request(port, "GET", "/assets/fourth.bin", [right, ("Range", "bytes=0-" + "9" * 5000)]),
    ]
    for wrong in near_misses:
        for method, target in (("PUT", "/assets/w.bin"), ("DELETE", "/assets/fourth.bin")):
            answers.append(request(port, method, target, [bearer(wrong)], b"w"))
    answers.append(request(port, "PUT", "/assets/w.bin", [("Authorization", token)], b"w"))
    answers.append(request(port, "PUT", "/assets/w.bin", [("Authorization", f"Basic {token}")]))
    for target in (
        "/", "/packages", "/packages?format=html", "/latest", "/healthz", "/readyz",
        "/openapi.yaml", "/repos/local/packages/releases",
        "/api/v3/repos/local/packages/releases/latest", "/assets/fourth.bin", "/nothing",
    ):  # fmt: skip
        answers.append(request(port, "GET", target, [right, ("Accept", "text/html")]))
    assert sum(1 for reply in answers if reply is not None and reply.status == 401) >= 10
    # A client that puts the token where it does not belong: the answer may echo what that
    # client sent, but the log must not keep it. Tokens shorter than 8 characters are not
    # redacted by the log formatter (it would redact ordinary words), so only long ones.
    if len(token) >= 8:
        for target in (f"/assets/{quote(token)}", f"/packages?format={quote(token)}&t={token}"):
            assert request(port, "GET", target, [right]) is not None
        request(port, "GET", "/healthz", [("X-Request-ID", token), ("Referer", token)])
    server.stop(signal.SIGTERM)
    outputs = [raw_text(reply) for reply in answers if reply is not None]
    assert outputs and server.lines
    for text in [*outputs, server.log]:
        assert token not in text
        for wrong in near_misses:
            assert wrong not in text, f"a near-miss token sent by a client was echoed: {wrong}"
    # The start-up error paths print settings; none of them may print the token.
    for env in ({"MAX_PACKAGES": "abc"}, {"PORT": "99999"}, {"LOG_LEVEL": "loud"}):
        failed = subprocess.run(
            [*default_command(), "--storage", str(tmp_path / "cli")],
            env={**os.environ, "AUTH_TOKEN": token, **env},
            capture_output=True,
            text=True,
            timeout=30,
            cwd=ROOT,
        )
        assert failed.returncode == 2, failed
        assert token not in failed.stdout + failed.stderr
    shown = subprocess.run(
        [*default_command(), "--help"],
        env={**os.environ, "AUTH_TOKEN": token},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert token not in shown.stdout + shown.stderr


def test_scoped_tokens_never_appear_in_logs_answers_pages_or_metrics(
    start_server: StartServer, tmp_path: Path
) -> None:
    """TOKENS_FILE tokens, plain and hashed, sent every way (Bearer, token, Basic, in a URL
    by mistake), right and wrong, through a re-read with a broken line: none of them, nor
    a stored hash, shows up anywhere a person or a scraper can see."""
    plain, hashed, metrics = (
        "scoped-Plain-7Qx-token",
        "scoped-Hashed-9Kw-token",
        "metrics-M3q-token-xx",
    )
    digest = hashlib.sha256(hashed.encode()).hexdigest()
    tokens = tmp_path / "tokens"
    tokens.write_text(
        f"{plain} write:local/packages  # CI\nsha256:{digest} read:*\n{metrics} metrics\n"
    )
    server = start_server(env={"TOKENS_FILE": str(tokens), "PRIVATE": "1", "LOG_LEVEL": "debug"})
    port = server.port
    basic = base64.b64encode(f"user:{hashed}".encode()).decode()
    answers = [
        put_raw(port, plain, "first.bin", b"one"),
        request(port, "PUT", "/assets/x.bin", [bearer(hashed)], b"x"),  # 403
        request(port, "GET", "/assets/first.bin", [("Authorization", f"Basic {basic}")]),
        request(port, "GET", "/metrics", [bearer(metrics)]),
        request(port, "GET", "/metrics", [bearer(plain)]),  # 403
    ]
    for secret in (plain, hashed, metrics, digest):
        for wrong in (secret[:-1], secret + "x", secret.upper()):
            answers.append(
                request(port, "GET", "/packages", [bearer(wrong), ("Accept", "text/html")])
            )
    for secret in (plain, hashed, metrics):
        # A client that puts it in a URL may see it echoed; the log must not keep it.
        for target in (f"/packages?t={quote(secret)}", f"/assets/{quote(secret)}"):
            assert request(port, "GET", target, [bearer(hashed)]) is not None
    for target in ("/packages", "/latest", "/repos/local/packages", "/", "/metrics"):
        answers.append(request(port, "GET", target, [bearer(hashed), ("Accept", "text/html")]))
        answers.append(request(port, "GET", target, [bearer(metrics)]))
    tokens.write_text(f"{plain} write:*\n{hashed} bad-scope\n")  # re-read: refused, logged
    time.sleep(1.5)
    answers.append(request(port, "GET", "/latest", [bearer(plain)]))
    server.stop(signal.SIGTERM)
    assert any("TOKENS_FILE not re-read" in line for line in server.lines)
    outputs = [raw_text(reply) for reply in answers if reply is not None]
    assert {reply.status for reply in answers if reply is not None} >= {200, 201, 401, 403}
    for text in [*outputs, server.log]:
        for secret in (plain, hashed, metrics, digest, basic):
            assert secret not in text


# -- the page -------------------------------------------------------------------------------

HOSTILE_NAMES = (
    "<img src=x onerror=alert(1)>.png",
    '"><svg onload=alert(1)>.svg',
    "' onmouseover='alert(1)' x='.txt",
    "<script>alert(1)<\u2215script>.js",
    "<table><tr><td><iframe srcdoc=x>.html",
    "<plaintext>.txt",
    "<textarea><title><xmp><noscript>.txt",
    "<base href=http:evil>.txt",
    "&lt;b&gt;entity&amp;.txt",
    "javascript:alert(1)",
    "<!--comment.txt",
    "]]><style>*{display:none}<\u2215style>.css",
    "{{7*7}}${7*7}.tpl",
)


class Structure(HTMLParser):
    """Records the element structure of a page (tags and attribute names), link targets,
    and the text of each download link."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.shape: list[tuple[str, tuple[str, ...]]] = []
        self.links: list[str] = []
        self.texts: list[str] = []
        self._in_link = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        self.shape.append((tag, tuple(sorted(name for name, _ in attrs))))
        if tag == "a" and any(name == "download" for name, _ in attrs):
            self.links.append(dict(attrs)["href"] or "")
            self.texts.append("")
            self._in_link = True

    def handle_endtag(self, tag: str) -> None:
        self.shape.append(("/" + tag, ()))
        if tag == "a":
            self._in_link = False

    def handle_data(self, data: str) -> None:
        if self._in_link:
            self.texts[-1] += data


def page_of(server: ServerProcess) -> tuple[Structure, requests.Response]:
    response = requests.get(f"{server.url}/packages", headers={"Accept": "text/html"}, timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    parsed = Structure()
    parsed.feed(response.text)
    return parsed, response


def test_names_with_html_are_inert_on_the_page(start_server: StartServer, tmp_path: Path) -> None:
    """The page listing hostile names has exactly the element structure of the page listing
    harmless ones: every name is text, links point at the name's own download URL, and the
    Content-Security-Policy allows no inline script but the page's own."""
    hostile = start_server(tmp_path / "hostile", env={"MAX_PACKAGES": "0"})
    benign = start_server(tmp_path / "benign", env={"MAX_PACKAGES": "0"})
    for index, name in enumerate(HOSTILE_NAMES):
        reply = put_raw(hostile.port, hostile.token or "", quote(name, safe=""), b"x")
        assert reply is not None and reply.status == 201, (name, reply)
        # Letters, not numbers: numbered names would be versions of one family on the page.
        benign_name = f"plain-{chr(ord('a') + index)}.txt"
        assert put_raw(benign.port, benign.token or "", benign_name, b"x") is not None
    attacked, response = page_of(hostile)
    harmless, _ = page_of(benign)
    assert attacked.shape == harmless.shape
    assert sorted(attacked.texts) == sorted(HOSTILE_NAMES)
    for href, text in zip(attacked.links, attacked.texts, strict=True):
        prefix = f"{hostile.url}/assets/"
        assert href.startswith(prefix) and unquote(href.removeprefix(prefix)) == text
    policy = response.headers["content-security-policy"]
    assert "default-src 'none'" in policy
    assert "unsafe-inline" not in policy and "unsafe-eval" not in policy
    assert response.headers["x-content-type-options"] == "nosniff"
    # The JSON documents carry the names as data, never as markup a browser would render.
    for target in ("/packages", "/latest"):
        document = requests.get(hostile.url + target, timeout=10)
        assert document.headers["content-type"].startswith("application/json")
    missing = requests.get(f"{hostile.url}/assets/{quote(HOSTILE_NAMES[1])}x", timeout=10)
    assert missing.status_code == 404
    assert missing.headers["content-type"].startswith("application/json")


ACTIVE = {
    "page.html": b"<html><body><script>alert(document.domain)</script></body></html>",
    "page.htm": b"<script>alert(1)</script>",
    "image.svg": b'<svg xmlns="http://www.w3.org/2000/svg" onload="alert(1)"/>',
    "page.xhtml": b'<html xmlns="http://www.w3.org/1999/xhtml"><script>alert(1)</script></html>',
    "data.xml": b'<?xml version="1.0"?><x:script xmlns:x="http://www.w3.org/1999/xhtml"/>',
    "script.js": b"alert(1)",
    "no-extension": b"<html><script>alert(1)</script></html>",
    "sniff.txt": b"<html><script>alert(1)</script></html>",
    "\u00e9t\u00e9.html": b"<script>alert(1)</script>",
}


def assert_not_rendered(response: requests.Response) -> None:
    """attachment (or, for an answer that is not the file, JSON), nosniff, sandboxing CSP."""
    lowered = {key.lower(): value for key, value in response.headers.items()}
    if response.status_code == 416:  # an error document, not the file's bytes
        assert lowered["content-type"].startswith("application/json"), lowered
    else:
        assert lowered["content-disposition"].lower().startswith("attachment"), lowered
    assert lowered["x-content-type-options"].lower() == "nosniff", lowered
    policy = lowered["content-security-policy"].lower()
    assert "sandbox" in policy and "default-src 'none'" in policy, lowered


def test_uploaded_html_and_svg_are_never_rendered_inline(start_server: StartServer) -> None:
    """Every way of fetching the bytes (GET, HEAD, a range, a 416, the GitHub asset API)
    answers with Content-Disposition: attachment, nosniff and a sandboxing CSP."""
    server = start_server(env={"MAX_PACKAGES": "0"})
    for name, data in ACTIVE.items():
        reply = put_raw(server.port, server.token or "", quote(name, safe=""), data)
        assert reply is not None and reply.status == 201, (name, reply)
    release = requests.get(server.url + "/latest", timeout=10).json()
    assets = {asset["name"]: asset["url"] for asset in release["assets"]}
    for name, data in ACTIVE.items():
        url = f"{server.url}/assets/{quote(name, safe='')}"
        fetched = [
            requests.get(url, timeout=10),
            requests.head(url, timeout=10),
            requests.get(url, headers={"Range": "bytes=0-5"}, timeout=10),
            requests.get(url, headers={"Range": f"bytes={len(data) + 10}-"}, timeout=10),
            requests.get(assets[name], headers={"Accept": "application/octet-stream"}, timeout=10),
        ]
        assert [r.status_code for r in fetched] == [200, 200, 206, 416, 200], name
        assert fetched[0].content == data and fetched[4].content == data
        assert sha256(fetched[0].content) == fetched[0].headers["etag"].strip('"')
        for response in fetched:
            assert_not_rendered(response)
