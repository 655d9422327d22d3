"""The real PyGithub publishes and reads versioned releases (SPEC §8.4, §8.5): create a
release in a new repository, upload assets to its upload_url, read it by tag, list, get
the latest (not the pre-release), download, delete an asset and the release."""

from __future__ import annotations

import pytest
import requests
from conftest import TOKEN, ServerProcess

github = pytest.importorskip("github")


@pytest.mark.parametrize("prefix", ["", "/api/v3"])
def test_pygithub_publishes_and_reads_releases(server: ServerProcess, tmp_path, prefix) -> None:
    client = github.Github(auth=github.Auth.Token(TOKEN), base_url=server.url + prefix, retry=None)
    with pytest.raises(github.GithubException) as missing:
        client.get_repo("acme/tool").get_latest_release()
    assert missing.value.status == 404
    repo = client.get_repo("acme/tool", lazy=True)
    first = repo.create_git_release("v1.0.0", "One", "first release")
    asset_file = tmp_path / "tool-1.0.0.tar.gz"
    asset_file.write_bytes(b"tool one")
    asset = first.upload_asset(str(asset_file), label="Linux build")
    assert (asset.name, asset.size, asset.label) == ("tool-1.0.0.tar.gz", 8, "Linux build")
    repo.create_git_release("v2.0.0-rc.1", "Two", "", prerelease=True)
    with pytest.raises(github.GithubException) as taken:
        repo.create_git_release("v1.0.0", "again", "")
    assert taken.value.status == 422
    assert client.get_repo("acme/tool").full_name == "acme/tool"
    assert repo.get_release("v1.0.0").title == "One"
    assert repo.get_latest_release().tag_name == "v1.0.0"
    assert sorted(r.tag_name for r in repo.get_releases()) == ["v1.0.0", "v2.0.0-rc.1"]
    download = requests.get(asset.browser_download_url, timeout=10)
    assert download.content == b"tool one"
    assert download.url == f"{server.url}/acme/tool/releases/download/v1.0.0/tool-1.0.0.tar.gz"
    edited = first.update_release("One, edited", "changed", prerelease=False)
    assert edited.title == "One, edited" and edited.get_assets()[0].label == "Linux build"
    assert asset.delete_asset()
    assert list(repo.get_release("v1.0.0").get_assets()) == []
    repo.get_release("v2.0.0-rc.1").delete_release()
    assert [r.tag_name for r in repo.get_releases()] == ["v1.0.0"]
