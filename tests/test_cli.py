"""The command line: defaults, bad configuration, TOML file, healthcheck, --help."""

from __future__ import annotations

import json
import os
import subprocess
import threading
import time

import pytest
import requests
from conftest import ROOT, ServerProcess, free_port


@pytest.fixture
def run_cli(server_command: list[str]):
    """Run the CLI (source tree or pyz) to completion."""

    def run(*args: str, env: dict[str, str] | None = None, cwd=ROOT, timeout: float = 20):
        return cli(server_command, *args, env=env, cwd=cwd, timeout=timeout)

    return run


def cli(command: list[str], *args: str, env=None, cwd=ROOT, timeout: float = 20):
    full_env = {k: v for k, v in os.environ.items() if k not in ("AUTH_TOKEN", "CONFIG_PATH")}
    full_env.update(env or {})
    return subprocess.run(
        [*command, *args],
        env=full_env,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


@pytest.mark.parametrize(
    ("args", "env", "named"),
    [
        ([], {"MAX_PACKAGES": "abc"}, "MAX_PACKAGES"),
        ([], {"MAX_PACKAGES": "-1"}, "MAX_PACKAGES"),
        ([], {"MAX_UPLOAD_SIZE": "2X"}, "MAX_UPLOAD_SIZE"),
        ([], {"PORT": "99999"}, "PORT"),
        ([], {"LOG_LEVEL": "loud"}, "LOG_LEVEL"),
        ([], {"TRUST_PROXY": "maybe"}, "TRUST_PROXY"),
        ([], {"PUBLIC_URL": "ftp://x"}, "PUBLIC_URL"),
        ([], {"REPOSITORY": "no-slash"}, "REPOSITORY"),
        (["--max-packages", "ten"], {}, "--max-packages"),
        (["--workers", "0"], {}, "--workers"),
        (["--certfile", "c.pem"], {}, "--certfile"),
        ([], {"AUTH_TOKEN_FILE": "/nonexistent/token"}, "AUTH_TOKEN_FILE"),
        ([], {"CONFIG_PATH": "/nonexistent.toml"}, "CONFIG_PATH"),
        (["--storage", "/proc/forbidden"], {}, "STORAGE_PATH"),
    ],
)
def test_bad_configuration_exits_2_with_one_line(run_cli, args, env, named) -> None:
    result = run_cli(*args, "--port", str(free_port()), env=env)
    assert result.returncode == 2, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert named in lines[0]
    assert "Traceback" not in result.stderr


def test_unwritable_storage_exits_2(run_cli, tmp_path) -> None:
    target = tmp_path / "file-not-dir"
    target.write_text("x")
    result = run_cli("--storage", str(target / "sub"), "--port", str(free_port()))
    assert result.returncode == 2
    assert "STORAGE_PATH" in result.stderr


def test_toml_file_and_precedence(start_server, tmp_path) -> None:
    config = tmp_path / "config.toml"
    config.write_text('max_packages = 1\nrepository = "from/toml"\n')
    server = start_server(env={"CONFIG_PATH": str(config), "REPOSITORY": "from/env"})
    server.upload("a.bin", b"a")
    assert server.upload("b.bin", b"b").json()["pruned"] == ["a.bin"]  # TOML applies
    latest = requests.get(f"{server.url}/latest", timeout=10).json()
    assert "/repos/from/env/" in latest["url"]  # env beats TOML


def test_flag_beats_env(start_server) -> None:
    server = start_server(env={"MAX_PACKAGES": "1"}, args=["--max-packages", "5"])
    for name in ("a", "b", "c"):
        server.upload(name, b"x")
    assert len(requests.get(f"{server.url}/packages", timeout=10).json()) == 3


def test_token_from_file(start_server, tmp_path) -> None:
    token_file = tmp_path / "token"
    token_file.write_text("file-token-123456\n")
    server = start_server(token=None, env={"AUTH_TOKEN_FILE": str(token_file)})
    ok = requests.put(
        f"{server.url}/assets/t.bin",
        data=b"t",
        headers={"Authorization": "Bearer file-token-123456"},
        timeout=10,
    )
    assert ok.status_code == 201


def test_defaults_serve_data_on_8000(server_command, tmp_path) -> None:
    """No arguments: ./data on 127.0.0.1:8000 (skipped if that port is taken)."""
    try:
        requests.get("http://127.0.0.1:8000/", timeout=0.5)
        pytest.skip("port 8000 is in use on this machine")
    except requests.ConnectionError:
        pass
    env = {k: v for k, v in os.environ.items() if k not in ("AUTH_TOKEN", "CONFIG_PATH", "PORT")}
    proc = subprocess.Popen(
        server_command, cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    try:
        server = ServerProcess.__new__(ServerProcess)
        server.url, server.proc, server.lines = "http://127.0.0.1:8000", proc, []
        server._reader = threading.Thread(target=lambda: None)
        ServerProcess.wait_ready(server)
        assert (tmp_path / "data").is_dir()
    finally:
        proc.terminate()
        proc.wait(10)


def test_healthcheck_subcommand(run_cli, server: ServerProcess) -> None:
    ok = run_cli("healthcheck", "--url", f"{server.url}/healthz")
    assert ok.returncode == 0
    assert run_cli("healthcheck", env={"PORT": str(server.port)}).returncode == 0
    down = run_cli("healthcheck", "--url", f"http://127.0.0.1:{free_port()}/healthz")
    assert down.returncode == 1
    assert "healthcheck" in down.stderr


def test_help_and_version(run_cli) -> None:
    helped = run_cli("--help")
    assert helped.returncode == 0
    for flag in ("--host", "--port", "--storage", "--max-packages", "--workers", "--certfile"):
        assert flag in helped.stdout
    assert "healthcheck" in helped.stdout
    version = run_cli("--version")
    assert version.returncode == 0 and version.stdout.startswith("release-server ")


def test_logs_are_json_with_request_fields_and_no_token(server: ServerProcess) -> None:
    server.upload("logged.bin", b"l")
    requests.get(f"{server.url}/packages", headers={"X-Request-ID": "trace-42"}, timeout=10)
    requests.put(f"{server.url}/assets/x", data=b"x", headers=server.auth("wrong-token-99"))
    response = requests.get(f"{server.url}/healthz", timeout=10)
    assert len(response.headers["x-request-id"]) >= 16
    server.stop()
    entries = [json.loads(line) for line in server.lines]
    assert all({"ts", "level", "msg", "logger"} <= set(e) for e in entries)
    traced = [e for e in entries if e.get("request_id") == "trace-42"]
    assert traced and traced[0]["path"] == "/packages" and traced[0]["status"] == 200
    assert {"method", "bytes", "duration_ms", "client"} <= set(traced[0])
    uploaded = [e for e in entries if e["msg"] == "uploaded"]
    assert uploaded[0]["name"] == "logged.bin" and uploaded[0]["size"] == 1
    assert "sha256" in uploaded[0]
    assert server.token not in server.log
    assert "wrong-token-99" not in server.log


def test_tls(server_command, tmp_path) -> None:
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    made = subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", str(key),
         "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1"],
        capture_output=True,
    )  # fmt: skip
    if made.returncode != 0:
        pytest.skip("openssl is not available to make a test certificate")
    port = free_port()
    proc = subprocess.Popen(
        [*server_command, "--port", str(port), "--storage", str(tmp_path / "d"),
         "--certfile", str(cert), "--keyfile", str(key)],
        cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    try:
        for _ in range(100):
            try:
                response = requests.get(f"https://127.0.0.1:{port}/healthz", verify=False)
                break
            except requests.ConnectionError:
                time.sleep(0.1)
        assert response.status_code == 200
    finally:
        proc.kill()  # hypercorn may wait ~30 s for TLS close_notify on shutdown
        proc.wait(10)
