"""The client scripts (scripts/upload.sh, delete.sh, publish-chart.sh), run as a user runs them.

upload.sh and delete.sh talk to a real server process (conftest's `server`). What a real
server cannot be made to do on demand (answer 502/503, a checksum mismatch) comes from a
small scripted HTTP stub instead. publish-chart.sh is checked through its dry run and a
fake `helm` on PATH that records how it is called.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

import pytest
import requests
from conftest import ROOT, TOKEN, ServerProcess, StartServer, free_port

SCRIPTS = ROOT / "scripts"
UPLOAD = SCRIPTS / "upload.sh"
DELETE = SCRIPTS / "delete.sh"
PUBLISH_CHART = SCRIPTS / "publish-chart.sh"

# Variables the scripts read: none may leak in from the environment running the tests.
SCRIPT_VARS = ("RELEASE_SERVER_", "DRY_RUN", "GITHUB_", "CHART_", "REGISTRY_")


def clean_env(**extra: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(SCRIPT_VARS)}
    # Retries stay short in tests; single tests raise them where they need to.
    env["RELEASE_SERVER_RETRIES"] = "0"
    env["RELEASE_SERVER_RETRY_DELAY"] = "0.05"
    env.update(extra)
    return env


def run(
    script: Path, *args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(script), *map(str, args)],
        env=env if env is not None else clean_env(),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
    )


def server_env(server: ServerProcess, **extra: str) -> dict[str, str]:
    """Point the scripts at the server through the environment, as CI does."""
    assert server.token
    return clean_env(
        **{"RELEASE_SERVER_URL": server.url, "RELEASE_SERVER_TOKEN": server.token, **extra}
    )


def make_file(directory: Path, name: str, data: bytes) -> Path:
    path = directory / name
    path.write_bytes(data)
    return path


# --- help ------------------------------------------------------------------------------


@pytest.mark.parametrize("script", [UPLOAD, DELETE])
def test_help_lists_options_and_environment(script: Path) -> None:
    for flag in ("--help", "-h"):
        result = run(script, flag)
        assert result.returncode == 0, result.stderr
        assert result.stdout.startswith("Usage:")
        for word in (
            "-u, --url",
            "-t, --token",
            "-f, --force",
            "RELEASE_SERVER_URL",
            "RELEASE_SERVER_TOKEN",
            "RELEASE_SERVER_RETRIES",
            "RELEASE_SERVER_RETRY_DELAY",
            "--cacert FILE",
            "CURL_CA_BUNDLE",
            "Retry-After",
        ):
            assert word in result.stdout, word
        # Every exit code is listed, one a line, under "Exit status:".
        codes = result.stdout.split("Exit status:\n", 1)[1]
        for code, words in (("0", "every"), ("1", "failed"), ("2", "usage error")):
            assert re.search(rf"^  {code}  .*{words}", codes, re.M), code


def test_publish_chart_help() -> None:
    result = run(PUBLISH_CHART, "--help")
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("Usage:")
    for word in ("--dry-run", "DRY_RUN=1", "helm push", "oci://", "REGISTRY_TOKEN"):
        assert word in result.stdout, word


@pytest.mark.parametrize("script", [UPLOAD, DELETE])
def test_unknown_option_is_a_usage_error(script: Path) -> None:
    result = run(script, "--bogus", "x", env=clean_env(RELEASE_SERVER_TOKEN="t"))
    assert result.returncode == 2
    assert "unknown option: --bogus" in result.stderr
    assert "--help" in result.stderr


USAGE_ERRORS = [
    # (arguments, environment over clean_env(), words in the message)
    (["--bogus", "x"], {"RELEASE_SERVER_TOKEN": "t"}, "unknown option: --bogus"),
    (["-u"], {"RELEASE_SERVER_TOKEN": "t"}, "option -u needs a value"),
    (["--cacert"], {"RELEASE_SERVER_TOKEN": "t"}, "option --cacert needs a value"),
    ([], {"RELEASE_SERVER_TOKEN": "t"}, "no "),
    (["{arg}"], {}, "no token: pass -t/--token or set RELEASE_SERVER_TOKEN"),
    (["{arg}"], {"RELEASE_SERVER_TOKEN": "t", "RELEASE_SERVER_URL": ""}, "no server URL"),
    (["-u", "", "{arg}"], {"RELEASE_SERVER_TOKEN": "t"}, "no server URL"),
    (["-u", "ftp://h", "{arg}"], {"RELEASE_SERVER_TOKEN": "t"}, "must start with http://"),
    (["--cacert", "/nonexistent.pem", "{arg}"], {"RELEASE_SERVER_TOKEN": "t"}, "--cacert"),
    (["{arg}"], {"RELEASE_SERVER_TOKEN": "t", "RELEASE_SERVER_RETRIES": "x"}, "RETRIES"),
    (["{arg}"], {"RELEASE_SERVER_TOKEN": "t", "RELEASE_SERVER_RETRY_DELAY": "-1"}, "DELAY"),
]


@pytest.mark.parametrize("script", [UPLOAD, DELETE])
@pytest.mark.parametrize(("args", "env", "words"), USAGE_ERRORS)
def test_usage_errors_exit_2(
    script: Path, args: list[str], env: dict[str, str], words: str, tmp_path: Path
) -> None:
    """Each usage error exits 2 (as --help says) and points at --help, sending nothing."""
    arg = str(make_file(tmp_path, "p.zip", b"x")) if script == UPLOAD else "p.zip"
    result = run(script, *(a.replace("{arg}", arg) for a in args), env=clean_env(**env))
    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    assert f"Try '{script.name} --help'." in result.stderr


# --- each client script stands alone ------------------------------------------------

# What upload.sh and delete.sh may call: bash, curl and POSIX tools; no python, no jq.
TOOLS = [
    *("bash", "curl", "awk", "sed", "grep", "tr", "head", "wc", "sha256sum", "date", "sleep"),
    *("basename", "cat", "chmod", "mktemp", "rm"),
]
BLOCK = re.compile(r"^# === client helpers.*?^# === end of client helpers =+$", re.M | re.S)


def test_client_scripts_source_nothing_and_share_one_block() -> None:
    texts = {script: script.read_text() for script in (UPLOAD, DELETE)}
    for script, text in texts.items():
        assert "lib.sh" not in text, script
        assert not re.search(r"^\s*(source|\.)\s", text, re.M), script
    # The helpers are copied, not sourced: the two copies must not drift apart.
    blocks = [BLOCK.search(text) for text in texts.values()]
    assert all(blocks)
    assert blocks[0].group() == blocks[1].group()  # type: ignore[union-attr]


def test_scripts_work_copied_alone(server: ServerProcess, tmp_path: Path) -> None:
    """CI copies one file: each script runs from an empty directory with only TOOLS on PATH."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for tool in TOOLS:
        found = shutil.which(tool)
        assert found, tool
        (bin_dir / tool).symlink_to(found)
    copies = {}
    for script in (UPLOAD, DELETE):
        copies[script] = tmp_path / f"ci-{script.stem}" / script.name
        copies[script].parent.mkdir()
        shutil.copy2(script, copies[script])
    env = server_env(server, PATH=str(bin_dir))
    package = make_file(tmp_path, "app-2.0.0.tar.gz", b"built by CI")

    up = run(copies[UPLOAD], package, env=env, cwd=copies[UPLOAD].parent)
    assert up.returncode == 0, up.stderr
    assert "created app-2.0.0.tar.gz" in up.stdout
    assert (server.storage / "app-2.0.0.tar.gz").read_bytes() == b"built by CI"

    again = run(copies[UPLOAD], package, env=env, cwd=copies[UPLOAD].parent)
    assert again.returncode == 1
    assert "already exists" in again.stderr

    gone = run(copies[DELETE], "app-2.0.0.tar.gz", env=env, cwd=copies[DELETE].parent)
    assert gone.returncode == 0, gone.stderr
    assert "deleted app-2.0.0.tar.gz" in gone.stdout
    assert not (server.storage / "app-2.0.0.tar.gz").exists()

    # A release below the root, with a name that needs percent-encoding.
    asset = make_file(tmp_path, "app 2.0.0 é.tar.gz", b"released by CI")
    up = run(copies[UPLOAD], *RELEASE, asset, env=env, cwd=copies[UPLOAD].parent)
    assert up.returncode == 0, up.stderr
    assert f"created acme/tool v1.2.0 {asset.name}" in up.stdout
    assert requests.get(release_url(server, asset.name), timeout=10).content == b"released by CI"
    gone = run(copies[DELETE], *RELEASE, asset.name, env=env, cwd=copies[DELETE].parent)
    assert gone.returncode == 0, gone.stderr
    assert f"deleted acme/tool v1.2.0 {asset.name}" in gone.stdout
    assert requests.get(release_url(server, asset.name), timeout=10).status_code == 404


# --- upload.sh against the real server -------------------------------------------------


def test_upload_several_files(server: ServerProcess, tmp_path: Path) -> None:
    a = make_file(tmp_path, "app-1.0.0.tar.gz", b"first package\n")
    b = make_file(tmp_path, "app-1.0.0.zip", os.urandom(70_000))

    result = run(UPLOAD, a, b, env=server_env(server))

    assert result.returncode == 0, result.stderr
    for path in (a, b):
        assert (server.storage / path.name).read_bytes() == path.read_bytes()
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        assert f"created {path.name} ({path.stat().st_size} bytes, sha256 {sha})" in result.stdout
    assert f"{server.url}/assets/app-1.0.0.zip" in result.stdout
    listed = {p["name"]: p for p in requests.get(server.url + "/packages", timeout=10).json()}
    assert listed["app-1.0.0.zip"]["sha256"] == hashlib.sha256(b.read_bytes()).hexdigest()


def test_upload_name_with_space_and_unicode_via_flags(
    server: ServerProcess, tmp_path: Path
) -> None:
    name = "release notes ü €.txt"
    path = make_file(tmp_path, name, "Grüße\n".encode())

    # -u/-t flags instead of the environment; a trailing slash on the URL is fine.
    result = run(UPLOAD, "-u", server.url + "/", "-t", TOKEN, path)

    assert result.returncode == 0, result.stderr
    assert (server.storage / name).read_bytes() == path.read_bytes()
    got = requests.get(f"{server.url}/assets/{quote(name)}", timeout=10)
    assert got.status_code == 200
    assert got.content == path.read_bytes()


def test_upload_under_another_name(server: ServerProcess, tmp_path: Path) -> None:
    path = make_file(tmp_path, "build-output.bin", b"payload")
    result = run(UPLOAD, "--name", "tool-latest.bin", path, env=server_env(server))
    assert result.returncode == 0, result.stderr
    assert (server.storage / "tool-latest.bin").read_bytes() == b"payload"
    assert not (server.storage / "build-output.bin").exists()

    two = run(UPLOAD, "-n", "x", path, path, env=server_env(server))
    assert two.returncode == 2
    assert "--name works with a single file only" in two.stderr


def test_upload_existing_name_needs_force(server: ServerProcess, tmp_path: Path) -> None:
    path = make_file(tmp_path, "pkg.tar.gz", b"version one")
    assert run(UPLOAD, path, env=server_env(server)).returncode == 0

    path.write_bytes(b"version two")
    refused = run(UPLOAD, path, env=server_env(server))
    assert refused.returncode == 1
    assert "pkg.tar.gz already exists" in refused.stderr
    assert "-f/--force" in refused.stderr
    assert (server.storage / "pkg.tar.gz").read_bytes() == b"version one"

    for flag in ("-f", "--force"):
        path.write_bytes(f"version {flag}".encode())
        forced = run(UPLOAD, flag, path, env=server_env(server))
        assert forced.returncode == 0, forced.stderr
        assert "replaced pkg.tar.gz" in forced.stdout
        assert (server.storage / "pkg.tar.gz").read_bytes() == f"version {flag}".encode()


def test_upload_wrong_token(server: ServerProcess, tmp_path: Path) -> None:
    path = make_file(tmp_path, "pkg.zip", b"data")
    result = run(UPLOAD, path, env=server_env(server, RELEASE_SERVER_TOKEN="not-the-token"))
    assert result.returncode == 1
    assert "not authorized (HTTP 401)" in result.stderr
    assert "RELEASE_SERVER_TOKEN" in result.stderr
    assert "not-the-token" not in result.stdout + result.stderr
    assert not (server.storage / "pkg.zip").exists()


def test_upload_missing_token_fails_before_sending(server: ServerProcess, tmp_path: Path) -> None:
    path = make_file(tmp_path, "pkg.zip", b"data")
    result = run(UPLOAD, path, env=clean_env(RELEASE_SERVER_URL=server.url))
    assert result.returncode == 2
    assert "no token: pass -t/--token or set RELEASE_SERVER_TOKEN" in result.stderr
    assert not (server.storage / "pkg.zip").exists()


def test_upload_to_server_without_token_configured(
    start_server: StartServer, tmp_path: Path
) -> None:
    server = start_server(token=None)
    path = make_file(tmp_path, "pkg.zip", b"data")
    result = run(
        UPLOAD, path, env=clean_env(RELEASE_SERVER_URL=server.url, RELEASE_SERVER_TOKEN="x")
    )
    assert result.returncode == 1
    assert "HTTP 401" in result.stderr
    assert "AUTH_TOKEN" in result.stderr  # the server's own explanation is shown
    assert not (server.storage / "pkg.zip").exists()


def test_upload_missing_local_file_uploads_nothing(server: ServerProcess, tmp_path: Path) -> None:
    present = make_file(tmp_path, "present.txt", b"here")
    missing = tmp_path / "missing.txt"

    result = run(UPLOAD, present, missing, env=server_env(server))

    assert result.returncode == 2
    assert f"{missing}: no such file" in result.stderr
    assert not (server.storage / "present.txt").exists()  # checked before sending anything

    directory = run(UPLOAD, tmp_path, env=server_env(server))
    assert directory.returncode == 2
    assert "is a directory" in directory.stderr

    nothing = run(UPLOAD, env=server_env(server))
    assert nothing.returncode == 2
    assert "no file given" in nothing.stderr


def test_upload_server_down_retries_then_fails(tmp_path: Path) -> None:
    path = make_file(tmp_path, "pkg.zip", b"data")
    url = f"http://127.0.0.1:{free_port()}"
    env = clean_env(
        RELEASE_SERVER_URL=url,
        RELEASE_SERVER_TOKEN=TOKEN,
        RELEASE_SERVER_RETRIES="2",
        RELEASE_SERVER_RETRY_DELAY="0.05",
    )

    started = time.monotonic()
    result = run(UPLOAD, path, env=env)

    assert time.monotonic() - started < 20
    assert result.returncode == 1
    assert f"cannot reach {url}" in result.stderr
    assert result.stderr.count("retrying in") == 2
    assert "giving up on pkg.zip after 3 attempt(s)" in result.stderr


def test_upload_rejects_bad_retry_settings(tmp_path: Path) -> None:
    path = make_file(tmp_path, "pkg.zip", b"data")
    result = run(UPLOAD, path, env=clean_env(RELEASE_SERVER_TOKEN="t", RELEASE_SERVER_RETRIES="x"))
    assert result.returncode == 2
    assert "RELEASE_SERVER_RETRIES must be a whole number" in result.stderr


def test_upload_prints_server_message_decoded(server: ServerProcess, tmp_path: Path) -> None:
    """The server's JSON detail is decoded: '\\\\' in JSON prints as one backslash."""
    path = make_file(tmp_path, "a\\b.zip", b"data")
    result = run(UPLOAD, path, env=server_env(server))
    assert result.returncode == 1
    assert "the server rejected a\\b.zip (HTTP 400)" in result.stderr
    assert "('/' or '\\')" in result.stderr
    assert "\\\\" not in result.stderr
    assert not list(server.storage.glob("*.zip"))


# --- TLS --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def tls_cert(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """A self-signed certificate for 127.0.0.1: (certificate, key)."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is not installed")
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "c.pem", directory / "k.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-addext",
            "subjectAltName=IP:127.0.0.1,DNS:localhost",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "1",
        ],
        check=True,
        capture_output=True,
    )
    return cert, key


class TLSServer(ServerProcess):
    """The real server serving HTTPS with a self-signed certificate."""

    def __init__(self, storage: Path, cert: Path, key: Path, **kwargs) -> None:
        self.cert = cert
        args = ["--certfile", str(cert), "--keyfile", str(key)]
        super().__init__(storage, args=args, **kwargs)

    def wait_ready(self, timeout: float = 20.0) -> None:
        self.url = f"https://127.0.0.1:{self.port}"
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"server exited with {self.proc.returncode}:\n{self.log}")
            try:
                # Connection: close, as an idle TLS keep-alive connection held by this
                # process delays the server's exit on SIGTERM.
                got = requests.get(
                    self.url + "/healthz",
                    timeout=1,
                    verify=str(self.cert),
                    headers={"Connection": "close"},
                )
                if got.status_code == 200:
                    return
            except requests.ConnectionError:
                pass
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"TLS server did not become ready:\n{self.log}")


@pytest.fixture
def tls_server(
    tls_cert: tuple[Path, Path], server_command: list[str], tmp_path: Path
) -> Iterator[TLSServer]:
    (tmp_path / "tls-data").mkdir()
    server = TLSServer(tmp_path / "tls-data", *tls_cert, command=server_command)
    yield server
    server.stop()


def assert_tls_hint(result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 1
    assert "TLS failure talking to https://" in result.stderr
    assert "hint:" in result.stderr
    assert "--cacert FILE" in result.stderr
    assert "CURL_CA_BUNDLE" in result.stderr


@pytest.mark.parametrize("script", [UPLOAD, DELETE])
def test_https_to_a_plain_http_port_hints_at_tls(
    script: Path, server: ServerProcess, tmp_path: Path
) -> None:
    arg = make_file(tmp_path, "p.zip", b"x") if script == UPLOAD else "p.zip"
    url = server.url.replace("http://", "https://")
    result = run(script, arg, env=server_env(server, RELEASE_SERVER_URL=url))
    assert_tls_hint(result)
    assert "(curl exit 35)" in result.stderr


def test_self_signed_server_needs_cacert(tls_server: TLSServer, tmp_path: Path) -> None:
    path = make_file(tmp_path, "secure.zip", b"over TLS")
    env = server_env(tls_server)

    refused = run(UPLOAD, path, env=env)
    assert_tls_hint(refused)
    assert "(curl exit 60)" in refused.stderr
    assert not (tls_server.storage / "secure.zip").exists()

    uploaded = run(UPLOAD, "--cacert", tls_server.cert, path, env=env)
    assert uploaded.returncode == 0, uploaded.stderr
    assert (tls_server.storage / "secure.zip").read_bytes() == b"over TLS"

    # curl itself reads CURL_CA_BUNDLE, as the hint says.
    bundle = {**env, "CURL_CA_BUNDLE": str(tls_server.cert)}
    replaced = run(UPLOAD, "-f", path, env=bundle)
    assert replaced.returncode == 0, replaced.stderr

    refused_delete = run(DELETE, "secure.zip", env=env)
    assert_tls_hint(refused_delete)
    deleted = run(DELETE, f"--cacert={tls_server.cert}", "secure.zip", env=env)
    assert deleted.returncode == 0, deleted.stderr
    assert not (tls_server.storage / "secure.zip").exists()


# --- delete.sh against the real server -------------------------------------------------


def test_delete_several_names(server: ServerProcess) -> None:
    names = ["old-1.zip", "old 2 ü.zip"]
    for name in names:
        assert server.upload(name, b"x").status_code == 200

    result = run(DELETE, *names, env=server_env(server))

    assert result.returncode == 0, result.stderr
    for name in names:
        assert f"deleted {name}" in result.stdout
        assert not (server.storage / name).exists()
        assert requests.get(f"{server.url}/assets/{quote(name)}", timeout=10).status_code == 404


def test_delete_missing_name_fails_unless_force(server: ServerProcess) -> None:
    result = run(DELETE, "nope.zip", env=server_env(server))
    assert result.returncode == 1
    assert "nope.zip is not on" in result.stderr
    assert "HTTP 404" in result.stderr
    assert "-f/--force" in result.stderr

    assert server.upload("there.zip", b"x").status_code == 200
    forced = run(DELETE, "-u", server.url, "-t", TOKEN, "--force", "nope.zip", "there.zip")
    assert forced.returncode == 0, forced.stderr
    assert "nope.zip is not on the server; nothing to delete" in forced.stdout
    assert "deleted there.zip" in forced.stdout
    assert not (server.storage / "there.zip").exists()


def test_delete_wrong_or_missing_token(server: ServerProcess) -> None:
    assert server.upload("keep.zip", b"x").status_code == 200

    wrong = run(DELETE, "keep.zip", env=server_env(server, RELEASE_SERVER_TOKEN="wrong"))
    assert wrong.returncode == 1
    assert "not authorized (HTTP 401)" in wrong.stderr

    missing = run(DELETE, "keep.zip", env=clean_env(RELEASE_SERVER_URL=server.url))
    assert missing.returncode == 2
    assert "no token" in missing.stderr

    assert (server.storage / "keep.zip").exists()


def test_delete_refuses_a_path() -> None:
    result = run(DELETE, "dist/app.zip", env=clean_env(RELEASE_SERVER_TOKEN="t"))
    assert result.returncode == 2
    assert "not a package name" in result.stderr


def test_delete_server_down() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    env = clean_env(RELEASE_SERVER_URL=url, RELEASE_SERVER_TOKEN=TOKEN, RELEASE_SERVER_RETRIES="1")
    result = run(DELETE, "pkg.zip", env=env)
    assert result.returncode == 1
    assert f"cannot reach {url}" in result.stderr
    assert "giving up on pkg.zip after 2 attempt(s)" in result.stderr


# --- a scripted stub for what the real server cannot be made to answer -----------------


@dataclass
class Stub:
    """An HTTP server that answers each request with the next scripted response."""

    responses: list[tuple[int, dict | None, dict[str, str]]] = field(default_factory=list)
    requests: list[dict] = field(default_factory=list)
    url: str = ""

    def script(self, *responses: int | tuple[int, dict | None, dict[str, str]]) -> None:
        for r in responses:
            self.responses.append(r if isinstance(r, tuple) else (r, None, {}))


@pytest.fixture
def stub() -> Iterator[Stub]:
    state = Stub()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # answers curl's Expect: 100-continue at once

        def _answer(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            state.requests.append(
                {"method": self.command, "path": self.path, "headers": self.headers, "body": body}
            )
            status, doc, headers = state.responses.pop(0) if state.responses else (500, None, {})
            payload = json.dumps(doc if doc is not None else {"detail": f"stub {status}"}).encode()
            self.send_response(status)
            for key, value in headers.items():
                self.send_header(key, value)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if self.command != "HEAD" and status not in (204, 304):
                self.wfile.write(payload)

        do_PUT = do_DELETE = do_HEAD = do_POST = _answer

        def log_message(self, *args: object) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    state.url = f"http://127.0.0.1:{httpd.server_address[1]}"
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield state
    httpd.shutdown()
    httpd.server_close()


def stub_env(stub: Stub, **extra: str) -> dict[str, str]:
    return clean_env(RELEASE_SERVER_URL=stub.url, RELEASE_SERVER_TOKEN="stub-token", **extra)


def test_upload_sends_sha256_token_and_encoded_name(stub: Stub, tmp_path: Path) -> None:
    data = os.urandom(5000)
    path = make_file(tmp_path, "a b+ü.bin", data)
    stub.script((201, {"name": "a b+ü.bin", "url": stub.url + "/assets/x", "pruned": []}, {}))

    result = run(UPLOAD, path, env=stub_env(stub))

    assert result.returncode == 0, result.stderr
    [req] = stub.requests
    assert req["method"] == "PUT"
    assert req["path"] == "/assets/a%20b%2B%C3%BC.bin"
    assert req["headers"]["X-Checksum-Sha256"] == hashlib.sha256(data).hexdigest()
    assert req["headers"]["Authorization"] == "Bearer stub-token"
    assert req["body"] == data


def test_upload_force_sends_overwrite(stub: Stub, tmp_path: Path) -> None:
    path = make_file(tmp_path, "p.zip", b"x")
    stub.script(200)
    assert run(UPLOAD, "-f", path, env=stub_env(stub)).returncode == 0
    assert stub.requests[0]["path"] == "/assets/p.zip?overwrite=true"


def test_upload_reports_pruned_packages(stub: Stub, tmp_path: Path) -> None:
    path = make_file(tmp_path, "p.zip", b"x")
    stub.script((201, {"name": "p.zip", "pruned": ["old-1.zip", "old-2.zip"]}, {}))
    result = run(UPLOAD, path, env=stub_env(stub))
    assert result.returncode == 0, result.stderr
    assert 'retention removed: "old-1.zip", "old-2.zip"' in result.stdout


def test_upload_checksum_mismatch(stub: Stub, tmp_path: Path) -> None:
    path = make_file(tmp_path, "p.zip", b"x")
    detail = "checksum mismatch: expected abc, received def"
    stub.script((422, {"detail": detail, "message": detail}, {}))
    result = run(UPLOAD, path, env=stub_env(stub, RELEASE_SERVER_RETRIES="3"))
    assert result.returncode == 1
    assert "checksum mismatch for p.zip (HTTP 422)" in result.stderr
    assert "nothing was stored" in result.stderr
    assert detail in result.stderr
    assert len(stub.requests) == 1  # a 4xx is never retried


@pytest.mark.parametrize(
    ("status", "words"),
    [
        (400, "rejected p.zip (HTTP 400)"),
        (413, "too large for the server (HTTP 413)"),
        (507, "disk is full (HTTP 507)"),
    ],
)
def test_upload_other_errors(stub: Stub, tmp_path: Path, status: int, words: str) -> None:
    path = make_file(tmp_path, "p.zip", b"x")
    stub.script(status)
    result = run(UPLOAD, path, env=stub_env(stub, RELEASE_SERVER_RETRIES="3"))
    assert result.returncode == 1
    assert words in result.stderr
    assert f"stub {status}" in result.stderr  # the server's detail
    assert len(stub.requests) == 1


def test_upload_retries_502_and_503(stub: Stub, tmp_path: Path) -> None:
    path = make_file(tmp_path, "p.zip", b"payload")
    stub.script(503, 502, (201, {"name": "p.zip"}, {}))

    result = run(UPLOAD, path, env=stub_env(stub, RELEASE_SERVER_RETRIES="3"))

    assert result.returncode == 0, result.stderr
    assert len(stub.requests) == 3
    assert all(r["body"] == b"payload" for r in stub.requests)
    assert "HTTP 503" in result.stderr
    assert "HTTP 502" in result.stderr
    assert result.stderr.count("retrying in") == 2
    assert "created p.zip" in result.stdout


def test_upload_gives_up_after_bounded_retries(stub: Stub, tmp_path: Path) -> None:
    path = make_file(tmp_path, "p.zip", b"x")
    stub.script(503, 503, 503, 201)
    result = run(UPLOAD, path, env=stub_env(stub, RELEASE_SERVER_RETRIES="2"))
    assert result.returncode == 1
    assert len(stub.requests) == 3
    assert "giving up on p.zip after 3 attempt(s)" in result.stderr


def test_upload_retry_finds_its_own_earlier_upload(stub: Stub, tmp_path: Path) -> None:
    """A retry that meets 409 checks whether the stored bytes are already ours."""
    path = make_file(tmp_path, "p.zip", b"payload")
    sha = hashlib.sha256(b"payload").hexdigest()
    stub.script(502, 409, (200, None, {"ETag": f'"{sha}"'}))

    result = run(UPLOAD, path, env=stub_env(stub, RELEASE_SERVER_RETRIES="2"))

    assert result.returncode == 0, result.stderr
    assert [r["method"] for r in stub.requests] == ["PUT", "PUT", "HEAD"]
    assert "stored by an earlier attempt" in result.stdout


def test_upload_stops_at_first_failure(stub: Stub, tmp_path: Path) -> None:
    a = make_file(tmp_path, "a.zip", b"a")
    b = make_file(tmp_path, "b.zip", b"b")
    stub.script(409, 201)
    result = run(UPLOAD, a, b, env=stub_env(stub))
    assert result.returncode == 1
    assert [r["path"] for r in stub.requests] == ["/assets/a.zip"]


def test_delete_retries_503(stub: Stub) -> None:
    stub.script(503, 204)
    result = run(DELETE, "p.zip", env=stub_env(stub, RELEASE_SERVER_RETRIES="2"))
    assert result.returncode == 0, result.stderr
    assert [r["method"] for r in stub.requests] == ["DELETE", "DELETE"]
    assert stub.requests[0]["headers"]["Authorization"] == "Bearer stub-token"
    assert "deleted p.zip" in result.stdout


def test_server_messages_are_json_decoded(stub: Stub, tmp_path: Path) -> None:
    path = make_file(tmp_path, "p.zip", b"x")
    detail = 'a\\b "quoted" \u00fc \U0001f600 a/b\ttab\nline \x1b[31mred'
    stub.script((400, {"detail": detail, "message": "unused"}, {}))
    result = run(UPLOAD, path, env=stub_env(stub))
    assert result.returncode == 1
    # JSON escapes decoded (\\ \" \u00fc, a surrogate pair, \/), control characters
    # made spaces, all on one line.
    assert 'rejected p.zip (HTTP 400): a\\b "quoted" ü 😀 a/b tab line [31mred\n' in result.stderr
    assert "\x1b" not in result.stderr


def test_pruned_names_are_decoded(stub: Stub, tmp_path: Path) -> None:
    path = make_file(tmp_path, "p.zip", b"x")
    stub.script((201, {"name": "p.zip", "pruned": ["old ü.zip", "o\\ld.zip"]}, {}))
    result = run(UPLOAD, path, env=stub_env(stub))
    assert result.returncode == 0, result.stderr
    assert 'retention removed: "old ü.zip", "o\\ld.zip"\n' in result.stdout


def test_upload_honours_retry_after(stub: Stub, tmp_path: Path) -> None:
    """A server shutting down answers 503 with Retry-After; the script waits that long."""
    path = make_file(tmp_path, "p.zip", b"payload")
    stub.script(
        (503, {"detail": "shutting down"}, {"Retry-After": "1"}), (201, {"name": "p.zip"}, {})
    )
    started = time.monotonic()
    result = run(UPLOAD, path, env=stub_env(stub, RELEASE_SERVER_RETRIES="2"))
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started >= 1.0  # not the 0.05 s RELEASE_SERVER_RETRY_DELAY
    assert "HTTP 503: shutting down; retrying in 1s as the server asked" in result.stderr
    assert len(stub.requests) == 2
    assert all(r["body"] == b"payload" for r in stub.requests)
    assert "created p.zip" in result.stdout


def test_delete_honours_retry_after(stub: Stub) -> None:
    stub.script((503, None, {"Retry-After": "1"}), 204)
    result = run(DELETE, "p.zip", env=stub_env(stub, RELEASE_SERVER_RETRIES="1"))
    assert result.returncode == 0, result.stderr
    assert "retrying in 1s as the server asked" in result.stderr
    assert "deleted p.zip" in result.stdout


@pytest.mark.parametrize("value", ["3600", "Fri, 31 Dec 2100 23:59:59 GMT"])
def test_retry_after_is_capped(stub: Stub, tmp_path: Path, value: str) -> None:
    path = make_file(tmp_path, "p.zip", b"x")
    stub.script((503, None, {"Retry-After": value}))
    proc = subprocess.Popen(
        [str(UPLOAD), str(path)],
        env=stub_env(stub, RELEASE_SERVER_RETRIES="1"),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,  # so the sleep it starts goes too
    )
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # TERM could land before bash forks the sleep
        proc.wait(10)
    assert "retrying in 60s as the server asked (Retry-After)" in line


# --- releases below the root: --repo and --tag -----------------------------------------

RELEASE = ("--repo", "acme/tool", "--tag", "v1.2.0")


def release_url(
    server: ServerProcess | Stub, name: str, repo: str = "acme/tool", tag: str = "v1.2.0"
) -> str:
    return f"{server.url}/{repo}/releases/download/{quote(tag, safe='')}/{quote(name, safe='')}"


def release_assets(
    server: ServerProcess, repo: str = "acme/tool", tag: str = "v1.2.0"
) -> dict[str, dict]:
    """The assets of the release, by name, as GitHub's REST API lists them."""
    got = requests.get(f"{server.url}/repos/{repo}/releases/tags/{tag}", timeout=10)
    assert got.status_code == 200, got.text
    return {asset["name"]: asset for asset in got.json()["assets"]}


@pytest.mark.parametrize("script", [UPLOAD, DELETE])
def test_help_describes_releases(script: Path) -> None:
    result = run(script, "--help")
    assert result.returncode == 0, result.stderr
    for word in (
        "--repo OWNER/REPO",
        "--tag TAG",
        "RELEASE_SERVER_REPO",
        "RELEASE_SERVER_TAG",
        "/{owner}/{repo}/releases/download/{tag}/{name}",
        "--repo acme/tool --tag v1.2.3",
    ):
        assert word in result.stdout, word
    usage_line = result.stdout.split("Exit status:\n", 1)[1].split("\n  2  ", 1)[1]
    assert "only one of" in usage_line and "--repo not OWNER/REPO" in usage_line.replace("\n", " ")


def test_upload_into_a_release(server: ServerProcess, tmp_path: Path) -> None:
    a = make_file(tmp_path, "tool-1.2.0-linux.tar.gz", b"linux build\n")
    b = make_file(tmp_path, "tool-1.2.0.zip", os.urandom(70_000))

    result = run(UPLOAD, *RELEASE, a, b, env=server_env(server))

    assert result.returncode == 0, result.stderr
    for path in (a, b):
        sha = hashlib.sha256(path.read_bytes()).hexdigest()
        size = path.stat().st_size
        assert f"created acme/tool v1.2.0 {path.name} ({size} bytes, sha256 {sha})" in result.stdout
        assert release_url(server, path.name) in result.stdout
        got = requests.get(release_url(server, path.name), timeout=10)
        assert got.status_code == 200
        assert got.content == path.read_bytes()
        # Below the root, not in the root release.
        assert (server.storage / "acme/tool/v1.2.0" / path.name).read_bytes() == path.read_bytes()
        assert not (server.storage / path.name).exists()
    assets = release_assets(server)
    assert set(assets) == {a.name, b.name}
    assert assets[b.name]["size"] == 70_000
    assert requests.get(server.url + "/packages", timeout=10).json() == []


def test_upload_into_a_release_existing_name_needs_force(
    server: ServerProcess, tmp_path: Path
) -> None:
    path = make_file(tmp_path, "pkg.tar.gz", b"version one")
    assert run(UPLOAD, *RELEASE, path, env=server_env(server)).returncode == 0

    path.write_bytes(b"version two")
    refused = run(UPLOAD, *RELEASE, path, env=server_env(server))
    assert refused.returncode == 1
    assert "could not store acme/tool v1.2.0 pkg.tar.gz (HTTP 409" in refused.stderr
    # The server's own message is shown.
    assert "A package named 'pkg.tar.gz' already exists" in refused.stderr
    assert "-f/--force" in refused.stderr
    assert requests.get(release_url(server, "pkg.tar.gz"), timeout=10).content == b"version one"

    for flag in ("-f", "--force"):
        path.write_bytes(f"version {flag}".encode())
        forced = run(UPLOAD, flag, *RELEASE, path, env=server_env(server))
        assert forced.returncode == 0, forced.stderr
        assert "replaced acme/tool v1.2.0 pkg.tar.gz" in forced.stdout
        got = requests.get(release_url(server, "pkg.tar.gz"), timeout=10)
        assert got.content == f"version {flag}".encode()
    assert set(release_assets(server)) == {"pkg.tar.gz"}


def test_release_name_with_space_and_unicode_round_trips(
    server: ServerProcess, tmp_path: Path
) -> None:
    name = "my tool é.zip"
    path = make_file(tmp_path, name, "Grüße\n".encode())
    flags = ("-u", server.url + "/", "-t", TOKEN, "--repo=acme/tool", "--tag=v1.2.0")

    up = run(UPLOAD, *flags, path)

    assert up.returncode == 0, up.stderr
    assert f"created acme/tool v1.2.0 {name}" in up.stdout
    assert "/releases/download/v1.2.0/my%20tool%20%C3%A9.zip" in up.stdout
    got = requests.get(release_url(server, name), timeout=10)
    assert got.status_code == 200
    assert got.content == path.read_bytes()
    assert set(release_assets(server)) == {name}

    gone = run(DELETE, *flags, name)
    assert gone.returncode == 0, gone.stderr
    assert f"deleted acme/tool v1.2.0 {name}" in gone.stdout
    assert requests.get(release_url(server, name), timeout=10).status_code == 404


def test_delete_from_a_release(server: ServerProcess) -> None:
    for name in ("a.zip", "b.zip"):
        put = requests.put(release_url(server, name), data=b"x", headers=server.auth(), timeout=10)
        assert put.status_code == 201, put.text
    assert server.upload("a.zip", b"root").status_code == 200  # same name, root release

    result = run(DELETE, *RELEASE, "a.zip", env=server_env(server))

    assert result.returncode == 0, result.stderr
    assert "deleted acme/tool v1.2.0 a.zip" in result.stdout
    assert set(release_assets(server)) == {"b.zip"}
    assert requests.get(release_url(server, "a.zip"), timeout=10).status_code == 404
    assert (server.storage / "a.zip").read_bytes() == b"root"  # the root package stays

    again = run(DELETE, *RELEASE, "a.zip", env=server_env(server))
    assert again.returncode == 1
    assert "acme/tool v1.2.0 a.zip is not on" in again.stderr
    assert "HTTP 404" in again.stderr
    forced = run(DELETE, "-f", *RELEASE, "a.zip", "b.zip", env=server_env(server))
    assert forced.returncode == 0, forced.stderr
    assert "acme/tool v1.2.0 a.zip is not on the server; nothing to delete" in forced.stdout
    assert "deleted acme/tool v1.2.0 b.zip" in forced.stdout
    assert (server.storage / "a.zip").exists()


def test_release_from_the_environment(server: ServerProcess, tmp_path: Path) -> None:
    env = server_env(server, RELEASE_SERVER_REPO="acme/tool", RELEASE_SERVER_TAG="v1.2.0")
    path = make_file(tmp_path, "tool.tar.gz", b"from env")

    up = run(UPLOAD, path, env=env)
    assert up.returncode == 0, up.stderr
    assert "created acme/tool v1.2.0 tool.tar.gz" in up.stdout
    assert requests.get(release_url(server, "tool.tar.gz"), timeout=10).content == b"from env"
    assert not (server.storage / "tool.tar.gz").exists()

    # An option wins over its variable.
    other = run(UPLOAD, "--tag", "v2.0.0", path, env=env)
    assert other.returncode == 0, other.stderr
    assert set(release_assets(server, tag="v2.0.0")) == {"tool.tar.gz"}

    gone = run(DELETE, "tool.tar.gz", env=env)
    assert gone.returncode == 0, gone.stderr
    assert "deleted acme/tool v1.2.0 tool.tar.gz" in gone.stdout
    assert requests.get(release_url(server, "tool.tar.gz"), timeout=10).status_code == 404
    assert set(release_assets(server, tag="v2.0.0")) == {"tool.tar.gz"}

    # Empty variables count as unset: the root release.
    root = run(UPLOAD, path, env={**env, "RELEASE_SERVER_REPO": "", "RELEASE_SERVER_TAG": ""})
    assert root.returncode == 0, root.stderr
    assert "created tool.tar.gz" in root.stdout
    assert (server.storage / "tool.tar.gz").read_bytes() == b"from env"


RELEASE_USAGE_ERRORS = [
    # (arguments, environment, words in the message)
    (["--repo", "acme/tool"], {}, "repository 'acme/tool' given (--repo or RELEASE_SERVER_REPO)"),
    (["--repo", "acme/tool"], {}, "but no tag: pass --tag TAG or set RELEASE_SERVER_TAG"),
    (["--tag", "v1.2.0"], {}, "tag 'v1.2.0' given (--tag or RELEASE_SERVER_TAG) but no repository"),
    (["--tag", "v1.2.0"], {}, "pass --repo OWNER/REPO or set RELEASE_SERVER_REPO"),
    ([], {"RELEASE_SERVER_REPO": "acme/tool"}, "repository 'acme/tool' given"),
    ([], {"RELEASE_SERVER_TAG": "v1.2.0"}, "tag 'v1.2.0' given"),
    (["--tag", "v1"], {"RELEASE_SERVER_REPO": ""}, "but no repository"),
    (["--repo", "a/b/c", "--tag", "v1"], {}, "--repo must be OWNER/REPO"),
    (["--repo", "/x", "--tag", "v1"], {}, "got '/x'"),
    (["--repo", "x/", "--tag", "v1"], {}, "got 'x/'"),
    (["--repo=acme", "--tag=v1"], {}, "got 'acme'"),
    ([], {"RELEASE_SERVER_REPO": "a/b/c", "RELEASE_SERVER_TAG": "v1"}, "got 'a/b/c'"),
    (["--repo", "acme/tool", "--tag", "v1/x"], {}, "--tag must be one name without '/'"),
    (["--repo", "", "--tag", "v1"], {}, "option --repo needs a value, got an empty one"),
    (["--repo", "acme/tool", "--tag="], {}, "option --tag needs a value, got an empty one"),
    (["{arg}", "--repo"], {}, "option --repo needs a value"),
]


@pytest.mark.parametrize("script", [UPLOAD, DELETE])
@pytest.mark.parametrize(("args", "env", "words"), RELEASE_USAGE_ERRORS)
def test_release_usage_errors_exit_2(
    script: Path, args: list[str], env: dict[str, str], words: str, stub: Stub, tmp_path: Path
) -> None:
    """Only one of --repo/--tag, or a malformed one, exits 2 and sends nothing."""
    arg = str(make_file(tmp_path, "p.zip", b"x")) if script == UPLOAD else "p.zip"
    argv = [a.replace("{arg}", arg) for a in args] if "{arg}" in args else [*args, arg]
    result = run(script, *argv, env=stub_env(stub, **env))
    assert result.returncode == 2, result.stderr
    assert words in result.stderr
    assert f"Try '{script.name} --help'." in result.stderr
    assert stub.requests == []


def test_release_paths_are_percent_encoded(stub: Stub, tmp_path: Path) -> None:
    """Owner, repository, tag and name are each one encoded segment; -f adds overwrite."""
    data = os.urandom(5000)
    path = make_file(tmp_path, "my tool é.zip", data)
    where = ("--repo", "ac me/tööl", "--tag", "v1.0+b ü")
    encoded = "/ac%20me/t%C3%B6%C3%B6l/releases/download/v1.0%2Bb%20%C3%BC/my%20tool%20%C3%A9.zip"
    stub.script((200, {"name": path.name, "pruned": []}, {}), 204)

    up = run(UPLOAD, "-f", *where, path, env=stub_env(stub))
    gone = run(DELETE, *where, path.name, env=stub_env(stub))

    assert up.returncode == 0, up.stderr
    assert "replaced ac me/tööl v1.0+b ü my tool é.zip" in up.stdout
    assert gone.returncode == 0, gone.stderr
    assert "deleted ac me/tööl v1.0+b ü my tool é.zip" in gone.stdout
    put, delete = stub.requests
    assert (put["method"], put["path"]) == ("PUT", encoded + "?overwrite=true")
    assert put["headers"]["X-Checksum-Sha256"] == hashlib.sha256(data).hexdigest()
    assert put["headers"]["Authorization"] == "Bearer stub-token"
    assert put["body"] == data
    assert (delete["method"], delete["path"]) == ("DELETE", encoded)


def test_release_upload_retry_finds_its_own_earlier_upload(stub: Stub, tmp_path: Path) -> None:
    """After a retry meets 409, the release asset (not the root package) is checked."""
    path = make_file(tmp_path, "p.zip", b"payload")
    sha = hashlib.sha256(b"payload").hexdigest()
    stub.script(502, 409, (200, None, {"ETag": f'"{sha}"'}))

    result = run(UPLOAD, *RELEASE, path, env=stub_env(stub, RELEASE_SERVER_RETRIES="2"))

    assert result.returncode == 0, result.stderr
    path_ = "/acme/tool/releases/download/v1.2.0/p.zip"
    assert [(r["method"], r["path"]) for r in stub.requests] == [
        ("PUT", path_),
        ("PUT", path_),
        ("HEAD", path_),
    ]
    assert "uploaded acme/tool v1.2.0 p.zip" in result.stdout
    assert "stored by an earlier attempt" in result.stdout


# --- publish-chart.sh -------------------------------------------------------------------


@pytest.fixture
def chart_dir(tmp_path: Path) -> Path:
    (tmp_path / "dist").mkdir()
    (tmp_path / "dist" / "release-server-1.2.3.tgz").write_bytes(b"not really a chart")
    return tmp_path


def publish_env(**extra: str) -> dict[str, str]:
    return clean_env(
        GITHUB_REPOSITORY_OWNER="Acme-Org",
        GITHUB_ACTOR="release-bot",
        GITHUB_REF_NAME="v1.2.3",
        GITHUB_TOKEN="ghs_secret_value",
        **extra,
    )


def test_publish_chart_dry_run_from_env(chart_dir: Path) -> None:
    result = run(PUBLISH_CHART, env=publish_env(DRY_RUN="1"), cwd=chart_dir)

    assert result.returncode == 0, result.stderr
    commands = [line[2:] for line in result.stdout.splitlines() if line.startswith("+ ")]
    assert commands == [
        "helm registry login ghcr.io --username release-bot --password-stdin",
        "helm push dist/release-server-1.2.3.tgz oci://ghcr.io/acme-org/charts",
        "helm registry logout ghcr.io",
    ]
    assert "ghs_secret_value" not in result.stdout + result.stderr


def test_publish_chart_dry_run_flag_and_options(chart_dir: Path) -> None:
    result = run(
        PUBLISH_CHART,
        "--dry-run",
        "--version",
        "1.2.3",
        "--registry",
        "oci://registry.example.com/team/charts/",
        "--username",
        "me",
        env=clean_env(),
        cwd=chart_dir,
    )
    assert result.returncode == 0, result.stderr
    assert "+ helm registry login registry.example.com --username me --password-stdin" in (
        result.stdout
    )
    assert (
        "+ helm push dist/release-server-1.2.3.tgz oci://registry.example.com/team/charts"
        in result.stdout
    )

    no_login = run(
        PUBLISH_CHART,
        "-n",
        "--no-login",
        "dist/release-server-1.2.3.tgz",
        "--owner",
        "me",
        env=clean_env(),
        cwd=chart_dir,
    )
    assert no_login.returncode == 0, no_login.stderr
    assert "login" not in no_login.stdout
    assert "+ helm push dist/release-server-1.2.3.tgz oci://ghcr.io/me/charts" in no_login.stdout


def test_publish_chart_errors(chart_dir: Path) -> None:
    missing = run(PUBLISH_CHART, "--version", "9.9.9", env=publish_env(DRY_RUN="1"), cwd=chart_dir)
    assert missing.returncode == 2
    assert "dist/release-server-9.9.9.tgz not found" in missing.stderr

    no_token = run(PUBLISH_CHART, env={**publish_env(), "GITHUB_TOKEN": ""}, cwd=chart_dir)
    assert no_token.returncode == 2
    assert "no registry token" in no_token.stderr

    no_version = run(PUBLISH_CHART, env=clean_env(DRY_RUN="1"), cwd=chart_dir)
    assert no_version.returncode == 2
    assert "no chart" in no_version.stderr


def test_publish_chart_runs_helm(chart_dir: Path, tmp_path: Path) -> None:
    """Without dry run it calls helm: the token goes to login on stdin, never in argv."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    calls = tmp_path / "helm-calls"
    fake_helm = bin_dir / "helm"
    fake_helm.write_text(
        "#!/usr/bin/env bash\n"
        f'printf "%s\\n" "$*" >>"{calls}"\n'
        f'if [[ "$*" == *--password-stdin* ]]; then cat >"{calls}.stdin"; fi\n'
    )
    fake_helm.chmod(0o755)
    env = publish_env(PATH=f"{bin_dir}{os.pathsep}{os.environ['PATH']}")

    result = run(PUBLISH_CHART, env=env, cwd=chart_dir)

    assert result.returncode == 0, result.stderr
    assert calls.read_text().splitlines() == [
        "registry login ghcr.io --username release-bot --password-stdin",
        "push dist/release-server-1.2.3.tgz oci://ghcr.io/acme-org/charts",
        "registry logout ghcr.io",
    ]
    assert Path(f"{calls}.stdin").read_text() == "ghs_secret_value"
    assert "ghs_secret_value" not in result.stdout + result.stderr
