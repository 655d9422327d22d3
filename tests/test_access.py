"""Access (SPEC §10): AUTH_TOKEN, the scoped tokens of TOKENS_FILE, PRIVATE, and the three
ways a token is sent. One table of route classes x callers, for the root release (the
default repository local/packages) and for a repository (acme/tool), on a private server
and on a public one."""

from __future__ import annotations

import base64
import hashlib
import os
import subprocess
import time
from pathlib import Path

import pytest
import requests
from conftest import ROOT, TOKEN, ServerProcess, StartServer

HASHED_READ = "read-local-hashed-0001"
TOKENS = {
    "read-acme-tool-0001": "read:acme/tool",
    "read-other-thing-01": "read:other/thing",
    "write-acme-all-0001": "write:acme/*",
    "write-other-thing-1": "write:other/thing",
    f"sha256:{hashlib.sha256(HASHED_READ.encode()).hexdigest()}": "read:local/packages",
    "write-local-pkgs-01": "write:local/packages",
    "metrics-only-token1": "metrics",
}
#: Who calls, for each subject: the token (None: no Authorization header).
CALLERS = {
    "root": {
        "none": None,
        "read-other": "read-acme-tool-0001",
        "read": HASHED_READ,
        "write-other": "write-acme-all-0001",
        "write": "write-local-pkgs-01",
        "admin": TOKEN,
    },
    "acme": {
        "none": None,
        "read-other": "read-other-thing-01",
        "read": "read-acme-tool-0001",
        "write-other": "write-other-thing-1",
        "write": "write-acme-all-0001",
        "admin": TOKEN,
    },
}
HTML = {"Accept": "text/html"}
GH_BY_TAG = (
    "query RepositoryReleaseByTag($owner: String!, $repo: String!, $tagName: String!) "
    "{ repository(owner: $owner, name: $repo) { release(tagName: $tagName) { tagName } } }"
)


def tokens_file(path: Path, tokens: dict[str, str] = TOKENS) -> Path:
    path.write_text("# scoped tokens\n\n" + "".join(f"{t} {s}  # {s}\n" for t, s in tokens.items()))
    return path


def reads(subject: str) -> list[tuple[str, str, str, dict[str, str]]]:
    """(class, method, path, headers) of every kind of read of ``subject``."""
    if subject == "root":
        return [
            ("document", "GET", "/latest", {}),
            ("document", "GET", "/packages?format=json", {}),
            ("document", "GET", "/repos/local/packages/releases", {}),
            ("document", "GET", "/api/v3/repos/local/packages", {}),
            ("download", "GET", "/assets/app-1.0.zip", {}),
            ("download", "HEAD", "/assets/app-1.0.zip", {}),
            ("download", "GET", "/latest/download/app.zip", {}),
            ("page", "GET", "/packages", HTML),
            ("page", "GET", "/", HTML),
            ("feed", "GET", "/local/packages/releases.atom", {}),
        ]
    return [
        ("document", "GET", "/repos/acme/tool/releases", {}),
        ("document", "GET", "/repos/acme/tool/releases/latest", {}),
        ("document", "GET", "/api/v3/repos/acme/tool/releases/tags/v1.0", {}),
        ("document", "GET", "/repos/acme/tool", {}),
        ("download", "GET", "/acme/tool/releases/download/v1.0/tool-1.0.zip", {}),
        ("download", "GET", "/acme/tool/releases/latest/download/tool.zip", {}),
        ("page", "GET", "/acme/tool/releases", HTML),
        ("page", "GET", "/acme/tool/releases/tag/v1.0", HTML),
        ("feed", "GET", "/acme/tool/releases.atom", {}),
    ]


def write_path(subject: str, caller: str) -> str:
    if subject == "root":
        return f"/assets/new-{caller}.txt"
    return f"/acme/tool/releases/download/v1.0/new-{caller}.txt"


def auth(token: str | None) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"} if token else {}


def call(server: ServerProcess, method: str, path: str, headers: dict[str, str]) -> int:
    data = b"written" if method == "PUT" else None
    return requests.request(
        method, server.url + path, data=data, headers=headers, allow_redirects=False, timeout=10
    ).status_code


def graphql(server: ServerProcess, owner: str, repo: str, token: str | None) -> int:
    variables = {"owner": owner, "repo": repo, "tagName": "v1.0"}
    return requests.post(
        server.url + "/api/graphql",
        json={"query": GH_BY_TAG, "variables": variables},
        headers=auth(token),
        timeout=10,
    ).status_code


def publish(server: ServerProcess) -> None:
    """A root package and a release of acme/tool, written with the admin token."""
    assert server.upload("app-1.0.zip", b"root bytes").status_code == 200
    put = requests.put(
        server.url + "/acme/tool/releases/download/v1.0/tool-1.0.zip",
        data=b"tool bytes",
        headers=server.auth(),
        timeout=10,
    )
    assert put.status_code == 201, put.text


def table(server: ServerProcess, private: bool) -> list[str]:
    """Every cell whose status is not the expected one, as readable lines."""
    wrong = []
    for subject, callers in CALLERS.items():
        owner, repo = ("local", "packages") if subject == "root" else ("acme", "tool")
        for caller, token in callers.items():
            may_read = not private or caller in ("read", "write", "admin")
            denied_read = 401 if token is None else 403
            for kind, method, path, headers in reads(subject):
                status = call(server, method, path, {**headers, **auth(token)})
                expected = {200, 302} if may_read else {denied_read}
                if status not in expected:
                    wrong.append(f"{subject} {kind} {method} {path} as {caller}: {status}")
            status = graphql(server, owner, repo, token)
            if status != (200 if may_read else denied_read):
                wrong.append(f"{subject} graphql as {caller}: {status}")
            may_write = caller in ("write", "admin")
            status = call(server, "PUT", write_path(subject, caller), auth(token))
            expected_write = 201 if may_write else (401 if token is None else 403)
            if status != expected_write:
                wrong.append(f"{subject} write PUT as {caller}: {status}")
    return wrong


@pytest.fixture
def tokens(tmp_path: Path) -> Path:
    return tokens_file(tmp_path / "tokens")


@pytest.mark.parametrize("private", [True, False], ids=["private", "public"])
def test_every_route_class_for_every_caller(
    start_server: StartServer, tokens: Path, private: bool
) -> None:
    env = {"TOKENS_FILE": str(tokens), "PRIVATE": "1" if private else "0"}
    server = start_server(env=env)
    publish(server)
    assert table(server, private) == []
    for path in ("/healthz", "/readyz", "/openapi.yaml"):
        assert call(server, "GET", path, {}) == 200, path
    # Some token has the metrics scope, so /metrics needs one (or the admin token).
    assert call(server, "GET", "/metrics", {}) == 401
    assert call(server, "GET", "/metrics", auth("read-acme-tool-0001")) == 403
    assert call(server, "GET", "/metrics", auth("metrics-only-token1")) == 200
    assert call(server, "GET", "/metrics", auth(TOKEN)) == 200


def test_refusals_say_what_is_missing(start_server: StartServer, tokens: Path) -> None:
    server = start_server(env={"TOKENS_FILE": str(tokens), "PRIVATE": "1"})
    url = server.url + "/repos/acme/tool/releases"
    anonymous = requests.get(url, timeout=10)
    assert anonymous.status_code == 401
    assert anonymous.headers["www-authenticate"] == 'Basic realm="release-server"'
    assert "read:acme/tool" in anonymous.json()["message"]
    other = requests.get(url, headers=auth("read-other-thing-01"), timeout=10)
    assert other.status_code == 403
    assert "may not read acme/tool" in other.json()["message"]
    assert "read:acme/tool (or read:acme/*, read:*)" in other.json()["message"]
    invalid = requests.get(url, headers=auth("not-a-known-token-1"), timeout=10)
    assert invalid.status_code == 401 and "not valid" in invalid.json()["message"]
    reader = requests.put(
        server.url + "/acme/tool/releases/download/v1/x.txt",
        data=b"x",
        headers=auth("read-acme-tool-0001"),
        timeout=10,
    )
    assert reader.status_code == 403
    assert "write:acme/tool" in reader.json()["message"]
    assert not list(server.storage.rglob("x.txt"))
    # The metrics scope is for /metrics only.
    assert call(server, "GET", "/packages", auth("metrics-only-token1")) == 403


def test_bearer_token_and_basic_auth_are_all_accepted(
    start_server: StartServer, tokens: Path
) -> None:
    server = start_server(env={"TOKENS_FILE": str(tokens), "PRIVATE": "1"})
    publish(server)
    url = server.url + "/acme/tool/releases/download/v1.0/tool-1.0.zip"
    token = "read-acme-tool-0001"
    for header in (
        f"Bearer {token}",
        f"token {token}",
        "Basic " + base64.b64encode(f"anyone:{token}".encode()).decode(),
        "Basic " + base64.b64encode(f"{token}:".encode()).decode(),  # curl -u TOKEN:
    ):
        answer = requests.get(url, headers={"Authorization": header}, timeout=10)
        assert answer.status_code == 200 and answer.content == b"tool bytes", header
    assert requests.get(url, auth=("x", token), timeout=10).content == b"tool bytes"
    assert requests.get(url, auth=("x", "read-acme-tool-0002"), timeout=10).status_code == 401
    broken = requests.get(url, headers={"Authorization": "Basic %%%"}, timeout=10)
    assert broken.status_code == 401


def test_private_per_repository(start_server: StartServer, tokens: Path) -> None:
    server = start_server(env={"TOKENS_FILE": str(tokens), "PRIVATE": "acme/*"})
    publish(server)
    assert call(server, "GET", "/assets/app-1.0.zip", {}) == 200
    assert call(server, "GET", "/repos/local/packages/releases", {}) == 200
    assert call(server, "GET", "/repos/acme/tool/releases", {}) == 401
    assert call(server, "GET", "/repos/acme/tool/releases", auth("read-acme-tool-0001")) == 200

    def listed(token: str | None) -> list[str]:
        index = requests.get(server.url + "/", headers=auth(token), timeout=10).json()
        return [repository["full_name"] for repository in index["repositories"]]

    # The index lists a private repository only to those who may read it.
    assert listed(None) == [] and listed("read-other-thing-01") == []
    assert listed("read-acme-tool-0001") == ["acme/tool"]


def test_drafts_and_permissions_follow_the_scope(start_server: StartServer, tokens: Path) -> None:
    server = start_server(env={"TOKENS_FILE": str(tokens)})
    created = requests.post(
        server.url + "/repos/acme/tool/releases",
        json={"tag_name": "v2.0", "draft": True},
        headers=auth("write-acme-all-0001"),
        timeout=10,
    )
    assert created.status_code == 201, created.text

    def tags(token: str | None) -> list[str]:
        answer = requests.get(server.url + "/repos/acme/tool/releases", headers=auth(token))
        return [release["tag_name"] for release in answer.json()]

    assert tags("write-acme-all-0001") == ["v2.0"]
    assert tags("write-local-pkgs-01") == [] and tags(None) == []
    repository = requests.get(server.url + "/repos/acme/tool", headers=auth("read-acme-tool-0001"))
    assert repository.json()["permissions"]["push"] is False
    writer = requests.get(server.url + "/repos/acme/tool", headers=auth("write-acme-all-0001"))
    assert writer.json()["permissions"]["push"] is True


def test_a_changed_tokens_file_takes_effect_without_a_restart(
    start_server: StartServer, tmp_path: Path
) -> None:
    path = tokens_file(tmp_path / "tokens", {"first-token-000001": "write:*"})
    server = start_server(env={"TOKENS_FILE": str(path)})

    def put_as(token: str, name: str) -> int:
        return call(server, "PUT", f"/assets/{name}", auth(token))

    assert put_as("first-token-000001", "a.txt") == 201
    assert put_as("second-token-00001", "b.txt") == 401
    tokens_file(path, {"second-token-00001": "write:local/packages"})
    deadline = time.monotonic() + 10
    while put_as("second-token-00001", "b.txt") != 201:
        assert time.monotonic() < deadline, "the new token never took effect"
        time.sleep(0.2)
    assert put_as("first-token-000001", "c.txt") == 401
    # A broken edit is logged with its line number and the tokens before stay in force.
    path.write_text("second-token-00001 write:local/packages\nbroken-line-token-1 write\n")
    time.sleep(1.5)
    assert put_as("second-token-00001", "d.txt") == 201
    assert any("TOKENS_FILE not re-read" in line and "line 2" in line for line in server.lines)
    assert "broken-line-token-1" not in server.log


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("short-token write:*", "at least 16 characters"),
        (
            "a-good-long-token-1 write:*\na-good-long-token-1 read:*",
            "line 3: the same token as line 2",
        ),
        ("a-good-long-token-1", "line 2: expected '<token> <scope>"),
        ("a-good-long-token-1 read:acme/tool, write:x/y", "this line has 3"),
        ("a-good-long-token-1 admin", "unknown scope 'admin'"),
        ("a-good-long-token-1 read:acme", "expected '*', 'owner/*' or 'owner/repo'"),
        ("sha256:abc read:*", "64 hex digits"),
    ],
    ids=["short", "twice", "no-scope", "spaces", "unknown", "target", "hash"],
)
def test_a_malformed_tokens_file_stops_start_up(
    tmp_path: Path, server_command: list[str], line: str, message: str
) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"# first line is a comment\n{line}\n")
    failed = subprocess.run(
        [*server_command, "--storage", str(tmp_path / "data"), "--tokens-file", str(path)],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
    )
    assert failed.returncode == 2, failed.stdout + failed.stderr
    assert f"TOKENS_FILE {path}: line " in failed.stderr
    assert message in failed.stderr
    assert "a-good-long-token-1" not in failed.stderr + failed.stdout


def test_private_without_any_token_stops_start_up(tmp_path: Path, server_command) -> None:
    failed = subprocess.run(
        [*server_command, "--storage", str(tmp_path / "data"), "--private", "1"],
        capture_output=True,
        text=True,
        timeout=30,
        cwd=ROOT,
        env={k: v for k, v in os.environ.items() if k != "AUTH_TOKEN"},
    )
    assert failed.returncode == 2
    assert "PRIVATE: nobody could read" in failed.stderr
