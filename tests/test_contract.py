"""The API contract, release_server/openapi.yaml: valid OpenAPI, complete (every route the app
registers), served at /openapi.yaml, and true of the live server (schemathesis)."""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import unquote

import pytest
import requests
import yaml
from conftest import ServerProcess, StartServer
from openapi_spec_validator import validate
from starlette.routing import Route

from release_server import github
from release_server.config import Settings
from release_server.endpoints import Context, routes
from release_server.storage import DirectoryStorage

CONTRACT = Path(__file__).resolve().parent.parent / "release_server" / "openapi.yaml"
HTTP_METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
CHECKS = (
    "not_a_server_error",
    "status_code_conformance",
    "content_type_conformance",
    "response_headers_conformance",
    "response_schema_conformance",
)
SEED = 20260124
MAX_EXAMPLES = 25


def load_contract() -> dict[str, Any]:
    return yaml.safe_load(CONTRACT.read_text(encoding="utf-8"))


def resolve(document: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """Follow a local ``$ref`` (``#/a/b``) once, if there is one."""
    ref = node.get("$ref")
    if not ref:
        return node
    target: Any = document
    for part in ref.removeprefix("#/").split("/"):
        target = target[part.replace("~1", "/").replace("~0", "~")]
    return target


def contract_operations(document: dict[str, Any]) -> set[tuple[str, str]]:
    """(path, METHOD) for every operation the contract describes."""
    operations = set()
    for path, item in document["paths"].items():
        for method in resolve(document, item):
            if method in HTTP_METHODS:
                operations.add((path, method.upper()))
    return operations


def app_operations(storage: Path) -> set[tuple[str, str]]:
    """(path, METHOD) for every route the application registers, in OpenAPI path syntax."""
    ctx = Context(Settings(storage_path=str(storage)), DirectoryStorage(storage))
    operations = set()
    for route in routes(ctx):
        assert isinstance(route, Route), route
        path = re.sub(r"\{(\w+):\w+\}", r"{\1}", route.path)
        operations.update((path, method) for method in route.methods or ())
    return operations


# -- the document itself -----------------------------------------------------------------------


def test_contract_is_valid_openapi() -> None:
    """openapi-spec-validator accepts the file (OpenAPI 3.1, every $ref resolves)."""
    document = load_contract()
    assert document["openapi"].startswith("3.1")
    validate(document)


def test_every_route_is_in_the_contract(tmp_path: Path) -> None:
    """Each route and method the app registers is described (HEAD is implied by GET)."""
    described = contract_operations(load_contract())
    registered = app_operations(tmp_path)
    missing = sorted(op for op in registered if op[1] != "HEAD" and op not in described)
    assert not missing, f"routes the contract does not describe: {missing}"


def test_contract_describes_only_real_routes(tmp_path: Path) -> None:
    """No operation in the contract that the app does not serve."""
    described = contract_operations(load_contract())
    phantom = sorted(described - app_operations(tmp_path))
    assert not phantom, f"operations the app does not serve: {phantom}"


def test_github_routes_are_described_at_root_and_under_api_v3() -> None:
    described = contract_operations(load_contract())
    github_ops = {(p, m) for p, m in described if p.startswith(("/repos/", "/users/"))}
    assert github_ops
    for path, method in github_ops:
        assert ("/api/v3" + path, method) in described


def test_spec_named_operations_are_described() -> None:
    """The table in SPEC section 3, checked by name (a few keys the app list cannot show)."""
    described = contract_operations(load_contract())
    for operation in [
        ("/upload", "POST"),
        ("/assets/{filename}", "PUT"),
        ("/assets/{filename}", "GET"),
        ("/assets/{filename}", "HEAD"),
        ("/assets/{filename}", "DELETE"),
        ("/latest", "GET"),
        ("/packages", "GET"),
        ("/healthz", "GET"),
        ("/health", "GET"),
        ("/readyz", "GET"),
        ("/openapi.yaml", "GET"),
        ("/metrics", "GET"),
        ("/", "GET"),
        ("/repos/{owner}/{repo}/releases/assets/{asset_id}", "GET"),
    ]:
        assert operation in described


def test_asset_id_example_is_the_example_file() -> None:
    """The example asset id is the id of the example file name (ids are stable per name)."""
    document = load_contract()
    name = document["components"]["parameters"]["filename"]["example"]
    asset = document["components"]["pathItems"]["ReleaseAsset"]["parameters"][2]
    assert asset["name"] == "asset_id"
    assert asset["example"] == github.asset_id(name)


def test_served_contract_is_this_file(server: ServerProcess) -> None:
    response = requests.get(server.url + "/openapi.yaml", timeout=10)
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("application/yaml")
    assert response.content == CONTRACT.read_bytes()


# -- the live server, fuzzed -------------------------------------------------------------------


@dataclass(frozen=True)
class CheckFailure:
    """One failed check of one schemathesis test case, from its NDJSON report."""

    operation: str
    check: str
    title: str
    message: str
    method: str
    uri: str
    path_parameters: dict[str, Any]
    headers: dict[str, Any]
    status: int | None
    response_headers: dict[str, list[str]] = field(default_factory=dict)
    body: bytes = b""

    def describe(self) -> str:
        headers = " ".join(f"-H '{k}: {v}'" for k, v in self.headers.items())
        return (
            f"{self.operation} [{self.check}] {self.title}\n"
            f"  curl -X {self.method} {headers} '{self.uri}'\n"
            f"  -> {self.status} {self.response_headers.get('content-type')} {self.body[:300]!r}\n"
            f"  {self.message[:600]}"
        )


def seed_packages(server: ServerProcess) -> None:
    """The packages the contract's examples name, plus a few edge cases, so reads find data."""
    document = load_contract()
    delete = document["paths"]["/assets/{filename}"]["delete"]["parameters"][0]
    examples = [document["components"]["parameters"]["filename"]["example"], delete["example"]]
    packages = {name: f"{name} contents\n".encode() * 40 for name in examples}
    packages["tool-1.0.zip"] = b"PK\x05\x06" + bytes(18)
    packages["notes-\u00fc.txt"] = b"non-ASCII name\n"
    for name, data in packages.items():
        answer = server.upload(name, data)
        assert answer.status_code == 200, answer.text
    # Uploads of empty files are refused (422); one copied in by hand is still served.
    (server.storage / "empty.bin").write_bytes(b"")


def run_schemathesis(
    server: ServerProcess, workdir: Path, *extra: str, max_examples: int = MAX_EXAMPLES
) -> tuple[dict[str, Any], list[CheckFailure], subprocess.CompletedProcess[str]]:
    """Run the schemathesis CLI against the live server; return its JSON report, every
    failed check, and the process (its output explains failures)."""
    report = workdir / "report.json"
    events = workdir / "events.ndjson"
    command = [
        sys.executable,
        "-m",
        "schemathesis.cli",
        "run",
        str(CONTRACT),
        "--url",
        server.url,
        "--checks",
        ",".join(CHECKS),
        "--max-examples",
        str(max_examples),
        "--seed",
        str(SEED),
        "--phases",
        "examples,coverage,fuzzing",
        "--continue-on-failure",
        "--generation-database",
        "none",
        # One worker: with two threads, hypothesis (inside schemathesis) sometimes dies in
        # ast.parse ("AST constructor recursion depth mismatch", a CPython 3.11 thread bug).
        "--workers",
        "1",
        "--request-timeout",
        "20",
        "--max-redirects",
        "0",
        "--no-color",
        "--report",
        "json,ndjson",
        "--report-json-path",
        str(report),
        "--report-ndjson-path",
        str(events),
        *extra,
    ]
    process = subprocess.run(
        command, cwd=workdir, capture_output=True, text=True, timeout=300, check=False
    )
    if not report.exists():
        pytest.fail(f"schemathesis did not run:\n{process.stdout}\n{process.stderr}")
    return json.loads(report.read_text()), list(read_failures(events)), process


def read_failures(events: Path) -> Iterator[CheckFailure]:
    """Every failed check in a schemathesis NDJSON event stream."""
    for line in events.read_text(encoding="utf-8").splitlines():
        finished = json.loads(line).get("ScenarioFinished")
        if not finished:
            continue
        recorder = finished["recorder"]
        for case_id, checks in recorder.get("checks", {}).items():
            for check in checks:
                if check["status"] == "success":
                    continue
                info = (check.get("failure_info") or {}).get("failure") or {}
                case = recorder["cases"][case_id]["value"]
                interaction = recorder.get("interactions", {}).get(case_id) or {}
                response = interaction.get("response") or {}
                content = (response.get("content") or {}).get("$base64", "")
                yield CheckFailure(
                    operation=recorder["label"],
                    check=check["name"],
                    title=info.get("title", check["status"]),
                    message=info.get("message", ""),
                    method=case["method"],
                    uri=(interaction.get("request") or {}).get("uri", case["path"]),
                    path_parameters={
                        k: unquote(str(v)) for k, v in (case.get("path_parameters") or {}).items()
                    },
                    headers=case.get("headers") or {},
                    status=response.get("status_code"),
                    response_headers={
                        k.lower(): v for k, v in (response.get("headers") or {}).items()
                    },
                    body=base64.b64decode(content),
                )


def summarize(
    label: str, report: dict[str, Any], failures: list[CheckFailure]
) -> dict[str, list[CheckFailure]]:
    """Print the run's numbers; return the failures grouped by operation."""
    unknown: dict[str, list[CheckFailure]] = {}
    for failure in failures:
        unknown.setdefault(failure.operation, []).append(failure)
    print(
        f"schemathesis {label}: {report['operations']['tested']} operations, "
        f"{report['test_cases']['generated']} test cases, seed {report['seed']}, "
        f"{report['running_time']:.1f}s"
    )
    return unknown


def assert_conforms(
    report: dict[str, Any],
    unknown: dict[str, list[CheckFailure]],
    process: subprocess.CompletedProcess[str],
) -> None:
    operations = report["operations"]
    assert operations["tested"] == operations["total"] == len(contract_operations(load_contract()))
    assert not report["errors"], f"{report['errors']}\n{process.stdout[-5000:]}"
    if unknown:
        text = "\n\n".join(f.describe() for group in unknown.values() for f in group[:3])
        pytest.fail(f"the server does not conform to the contract:\n\n{text}")


def test_live_server_conforms_authenticated(start_server: StartServer, tmp_path: Path) -> None:
    """Every operation, with the token: no 5xx, and statuses, content types, headers and
    bodies as the contract says."""
    server = start_server(args=["--max-packages", "0"])
    seed_packages(server)
    report, failures, process = run_schemathesis(
        server, tmp_path, "--header", f"Authorization: Bearer {server.token}"
    )
    assert_conforms(report, summarize("authenticated", report, failures), process)
    assert server.proc.poll() is None, server.log[-3000:]


def test_live_server_conforms_unauthenticated(start_server: StartServer, tmp_path: Path) -> None:
    """Without a token: reads conform and no write succeeds (they answer 401)."""
    server = start_server(args=["--max-packages", "0"])
    seed_packages(server)
    before = sorted(p.name for p in server.storage.iterdir() if not p.name.startswith("."))
    report, failures, process = run_schemathesis(server, tmp_path, max_examples=10)
    assert_conforms(report, summarize("unauthenticated", report, failures), process)
    after = sorted(p.name for p in server.storage.iterdir() if not p.name.startswith("."))
    assert after == before


# -- bugs schemathesis once found, pinned by one exact request each --------------------------


def test_paginated_list_with_non_latin1_repo(server: ServerProcess) -> None:
    made = requests.put(
        server.url + "/local/%F0%9F%98%8D/releases/download/v1/a.zip", data=b"a",
        headers=server.auth(), timeout=10,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    response = requests.get(server.url + "/repos/local/%F0%9F%98%8D/releases", timeout=10)
    assert response.status_code == 200
    assert 'rel="first"' in response.headers["link"]


def test_document_urls_percent_encode_owner(server: ServerProcess) -> None:
    made = requests.put(
        server.url + "/a%23b/c/releases/download/v1/a.zip", data=b"a", headers=server.auth(),
        timeout=10,
    )  # fmt: skip
    assert made.status_code == 201, made.text
    response = requests.get(server.url + "/repos/a%23b/c/releases/latest", timeout=10)
    assert response.status_code == 200
    document = response.json()
    assert document["url"] == server.url + f"/repos/a%23b/c/releases/{document['id']}"
    assert document["assets"][0]["browser_download_url"] == (
        server.url + "/a%23b/c/releases/download/v1/a.zip"
    )


def test_asset_bytes_are_octet_stream(server: ServerProcess) -> None:
    """SPEC 3: the asset URL with Accept: application/octet-stream sends the bytes as such."""
    server.upload("tool-1.0.tar.gz", b"bytes")
    asset = github.asset_id("tool-1.0.tar.gz")
    response = requests.get(
        f"{server.url}/repos/local/packages/releases/assets/{asset}",
        headers={"Accept": "application/octet-stream"},
        timeout=10,
    )
    assert response.status_code == 200
    assert response.content == b"bytes"
    assert response.headers["content-type"] == "application/octet-stream"


def test_unsatisfiable_range_error_shape(server: ServerProcess) -> None:
    server.upload("tool-1.0.tar.gz", b"0123456789ab")
    response = requests.get(
        server.url + "/assets/tool-1.0.tar.gz", headers={"Range": "bytes=100-200"}, timeout=10
    )
    assert response.status_code == 416
    assert response.headers["content-range"] == "bytes */12"
    assert set(response.json()) >= {"detail", "message"}
