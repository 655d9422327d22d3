"""What a new operator tripped over: restarts during uploads, storage trouble, metrics with
several workers, PyGithub's get_repo, start-up errors, --help, logs and content types."""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
import requests
from conftest import ROOT, TOKEN, ServerProcess, free_port

# -- restarts during long uploads -----------------------------------------------------------


def test_sigterm_during_a_slow_upload_answers_503_with_retry_after(start_server) -> None:
    server = start_server(env={"GRACEFUL_TIMEOUT": "1"})
    head = (
        "PUT /assets/slow.bin HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        f"Authorization: Bearer {TOKEN}\r\nContent-Length: 10000000\r\n\r\n"
    )
    with socket.create_connection(("127.0.0.1", server.port), timeout=20) as sock:
        sock.sendall(head.encode() + b"x" * 1000)
        time.sleep(0.5)
        server.proc.send_signal(signal.SIGTERM)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, _, rest = answer.partition(b"\r\n")
    assert status_line.startswith(b"HTTP/1.1 503"), answer[:300]
    headers, _, body = rest.partition(b"\r\n\r\n")
    assert b"retry-after:" in headers.lower()
    assert "shutting down" in json.loads(body)["detail"]
    assert server.proc.wait(15) == 0
    assert not (server.storage / "slow.bin").exists()
    assert not any("Traceback" in line for line in server.lines), server.log


# -- storage trouble ------------------------------------------------------------------------


def test_storage_gone_is_503_with_the_reason_and_one_log_line(start_server, tmp_path) -> None:
    storage = tmp_path / "gone"
    server = start_server(storage)
    server.upload("a.zip", b"a")
    shutil.rmtree(storage)
    ready = requests.get(server.url + "/readyz", timeout=10)
    assert ready.status_code == 503
    answers = [
        requests.get(server.url + "/packages", headers={"X-Request-ID": "trouble-1"}, timeout=10),
        requests.get(server.url + "/latest", timeout=10),
        requests.put(f"{server.url}/assets/b.zip", data=b"b", headers=server.auth(), timeout=10),
        server.upload("c.zip", b"c"),
    ]
    for answer in answers:
        assert answer.status_code == 503, (answer.status_code, answer.text)
        assert answer.json()["detail"].startswith("Storage is not usable")
        assert answer.headers["retry-after"]
    time.sleep(0.3)
    errors = [json.loads(line) for line in server.lines if '"level": "error"' in line]
    first = [entry for entry in errors if entry.get("request_id") == "trouble-1"]
    assert len(first) == 1, errors
    assert not any("Error in ASGI" in line for line in server.lines)


# -- metrics with two workers ---------------------------------------------------------------


def counter(text: str, route: str) -> int:
    labels = f'route="{re.escape(route)}",method="GET",status="200"'
    pattern = rf"release_server_requests_total\{{{labels}\}} (\d+)"
    return sum(int(value) for value in re.findall(pattern, text))


def test_metrics_add_up_across_two_workers(start_server) -> None:
    server = start_server(args=["--workers", "2"])
    for _ in range(40):
        requests.get(server.url + "/healthz", headers={"Connection": "close"}, timeout=10)
    time.sleep(1.5)  # workers share their counters at most a second behind
    seen = []
    for _ in range(8):
        text = requests.get(server.url + "/metrics", headers={"Connection": "close"}, timeout=10)
        seen.append(counter(text.text, "/healthz"))
    assert seen == sorted(seen), f"counters went backwards across scrapes: {seen}"
    assert seen[0] >= 40, seen


# -- PyGithub's usual first call ------------------------------------------------------------


def test_pygithub_get_repo_and_latest_release(server: ServerProcess) -> None:
    github = pytest.importorskip("github")
    server.upload("tool-1.0.zip", b"tool")
    client = github.Github(base_url=server.url + "/api/v3", retry=None)
    repo = client.get_repo("local/packages")
    assert repo.full_name == "local/packages" and repo.default_branch == "main"
    assert repo.permissions.pull and not repo.permissions.push
    assert repo.clone_url.startswith(server.url)
    release = repo.get_latest_release()
    assert [asset.name for asset in release.get_assets()] == ["tool-1.0.zip"]
    writer = github.Github(auth=github.Auth.Token(TOKEN), base_url=server.url + "/api/v3")
    assert writer.get_repo("local/packages").permissions.push


# -- start-up errors that name the setting --------------------------------------------------


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if k not in ("AUTH_TOKEN", "CONFIG_PATH")}
    return subprocess.run(
        [*default_cli(), *args],
        env={**clean, **(env or {})},
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )


def default_cli() -> list[str]:
    from conftest import default_command

    return default_command()


def make_cert(folder: Path, name: str) -> tuple[Path, Path]:
    cert, key = folder / f"{name}.crt", folder / f"{name}.key"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost",
         "-keyout", str(key), "-out", str(cert), "-days", "1"],
        check=True, capture_output=True,
    )  # fmt: skip
    return cert, key


@pytest.mark.parametrize("case", ["swapped", "mismatched"])
def test_bad_tls_files_name_the_setting(tmp_path: Path, case: str) -> None:
    cert, key = make_cert(tmp_path, "a")
    other_cert, _ = make_cert(tmp_path, "b")
    args = ["--certfile", str(key), "--keyfile", str(cert)]
    if case == "mismatched":
        args = ["--certfile", str(other_cert), "--keyfile", str(key)]
    result = run_cli(*args, "--storage", str(tmp_path / "d"), "--port", str(free_port()))
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "--certfile/--keyfile" in lines[0], result.stderr
    assert "Traceback" not in result.stderr + result.stdout


def test_unknown_host_names_the_setting(tmp_path: Path) -> None:
    result = run_cli("--host", "not-a-host.invalid", "--storage", str(tmp_path / "d"))
    assert result.returncode == 2
    assert result.stderr.startswith("release-server: error: --host:"), result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


# -- --help shows every setting; TOML hints ---------------------------------------------------


def test_help_lists_every_setting() -> None:
    from release_server.config import TABLE

    shown = run_cli("--help").stdout
    for key in TABLE:
        assert key.upper() in shown, key
    for name in ("AUTH_TOKEN_FILE", "CONFIG_PATH", "--config", "PUBLIC_URL", "TRUST_PROXY"):
        assert name in shown


@pytest.mark.parametrize(
    ("key", "hint"), [("storage", "storage_path"), ("MAX_PACKAGES", "max_packages")]
)
def test_unknown_toml_key_suggests_the_closest(tmp_path: Path, key: str, hint: str) -> None:
    config = tmp_path / "c.toml"
    config.write_text(f"{key} = 'x'\n")
    result = run_cli("--config", str(config), "--storage", str(tmp_path / "d"))
    assert result.returncode == 2
    assert "did you mean" in result.stderr and repr(hint) in result.stderr, result.stderr


def test_config_flag_reads_the_file(start_server, tmp_path: Path) -> None:
    config = tmp_path / "c.toml"
    config.write_text("repository = 'acme/flagged'\n")
    server = start_server(args=["--config", str(config)])
    assert "acme/flagged" in requests.get(server.url + "/latest", timeout=10).json()["url"]


# -- logs an operator wants -----------------------------------------------------------------


def test_start_and_stop_lines_and_rich_access_log(start_server) -> None:
    server = start_server(env={"TRUST_PROXY": "1"}, args=["--workers", "2"])
    requests.get(
        server.url + "/packages?format=json&x=1",
        headers={"User-Agent": "curl/8.5.0", "X-Forwarded-For": "203.0.113.9, 198.51.100.7"},
        timeout=10,
    )
    time.sleep(0.3)
    server.stop()
    entries = [json.loads(line) for line in server.lines]
    starting = [e for e in entries if e["msg"] == "starting"]
    assert len(starting) == 1 and starting[0]["settings"]["auth_token"] == "set"
    assert TOKEN not in server.log
    assert len([e for e in entries if e["msg"].startswith("Running on")]) == 1
    assert [e["msg"] for e in entries].count("stopped") == 1
    access = [e for e in entries if e["msg"] == "request" and e["path"] == "/packages"]
    assert access[0]["query"] == "format=json&x=1"
    assert access[0]["user_agent"] == "curl/8.5.0"
    assert access[0]["client"] == "198.51.100.7"


def test_hypercorn_app_logs_json_only(tmp_path: Path) -> None:
    port = free_port()
    env = {**os.environ, "STORAGE_PATH": str(tmp_path / "d"), "AUTH_TOKEN": TOKEN}
    proc = subprocess.Popen(
        ["hypercorn", "app:app", "--bind", f"127.0.0.1:{port}"],
        cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                if requests.get(f"http://127.0.0.1:{port}/healthz", timeout=1).ok:
                    break
            except requests.ConnectionError:
                time.sleep(0.1)
    finally:
        proc.send_signal(signal.SIGTERM)
        output, _ = proc.communicate(timeout=20)
    lines = [line for line in output.splitlines() if line.strip()]
    assert any("Running on" in line for line in lines), output
    for line in lines:
        json.loads(line)


# -- content types --------------------------------------------------------------------------


def test_compressed_archives_have_their_own_types(server: ServerProcess) -> None:
    server.upload("tool_1.0_linux_amd64.tar.gz", b"gz")
    server.upload("tool-1.0.whl", b"whl")
    gz = requests.head(f"{server.url}/assets/tool_1.0_linux_amd64.tar.gz", timeout=10)
    assert gz.headers["content-type"] == "application/gzip"
    assets = {
        a["name"]: a for a in requests.get(server.url + "/latest", timeout=10).json()["assets"]
    }
    assert assets["tool_1.0_linux_amd64.tar.gz"]["content_type"] == "application/gzip"
    assert assets["tool-1.0.whl"]["content_type"] == "application/zip"
