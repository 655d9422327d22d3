"""A real headless Chromium on ``/``, ``/{o}/{r}/releases`` and ``/{o}/{r}/releases/tag/{tag}``
(SPEC §8.4): what a person sees and clicks, at desktop and phone widths, light and dark,
under the same strict Content-Security-Policy as /packages. Same requirements and
screenshots as tests/test_page_browser.py (whose helpers this uses)."""

from __future__ import annotations

import hashlib
import os
import time
from urllib.parse import quote

import pytest
import requests
import test_page_browser
from selenium.webdriver.common.by import By
from test_page_browser import (
    EVIL,
    allow_clipboard,
    assert_clean,
    clipboard,
    family_row,
    no_sideways_scroll,
    open_page,
    screenshot,
    wait_for,
)

# The page tests' fixtures: one Chromium per module, and its download directory.
browser = test_page_browser.browser
downloads = test_page_browser.downloads
TAGS = ("v1.0.0", "v1.1.0", "v2.0.0-rc.1")
PLATFORMS = ("linux-amd64", "darwin-arm64", "windows-amd64")


def assets(version: str) -> list[str]:
    return [f"tool-{version}-{p}.tar.gz" for p in PLATFORMS] + ["checksums.txt"]


@pytest.fixture
def published(start_server):
    """acme/tool with three releases (the last a pre-release, each with four files), a
    repository named like markup, acme/empty with a pre-release, and two packages in the
    root release; the digests of every file."""
    server = start_server()
    digests = {}
    for tag in TAGS:
        for name in assets(tag[1:]):
            data = os.urandom(2048) + name.encode()
            url = f"{server.url}/acme/tool/releases/download/{tag}/{name}"
            answer = requests.put(url, data=data, headers=server.auth(), timeout=10)
            assert answer.status_code == 201, answer.text
            digests[f"{tag}/{name}"] = hashlib.sha256(data).hexdigest()
        time.sleep(0.02)
    time.sleep(0.02)
    url = f"{server.url}/acme/{quote(EVIL)}/releases/download/v1/{quote(EVIL)}"
    hostile = requests.put(url, data=b"x", headers=server.auth(), timeout=10)
    assert hostile.status_code == 201, hostile.text
    time.sleep(0.02)
    beta = f"{server.url}/acme/empty/releases/download/v0.1.0-beta/notes.txt"
    assert requests.put(beta, data=b"b", headers=server.auth(), timeout=10).status_code == 201
    for name in ("app-1.0.zip", "app-1.1.zip"):
        assert server.upload(name, name.encode()).status_code == 200
    server.digests = digests
    return server


def every_screen(test):
    """Run ``test`` at phone and desktop widths, light and dark."""
    test = pytest.mark.parametrize("width", [375, 1280])(test)
    return pytest.mark.parametrize("scheme", ["light", "dark"])(test)


TABLE = """
return Array.from(document.querySelectorAll(arguments[0] + " tbody tr"), (row) =>
  Array.from(row.cells, (cell) => cell.innerText.trim()));
"""


@every_screen
def test_the_index_lists_the_root_release_and_the_repositories(
    browser, published, width: int, scheme: str
) -> None:
    open_page(browser, published.url, width=width, scheme=scheme, path="/")
    assert browser.find_element(By.TAG_NAME, "h1").text == "Releases"
    root, repositories = browser.find_elements(By.CSS_SELECTOR, "table.list")
    names = [a.text for a in repositories.find_elements(By.CSS_SELECTOR, "td:first-child > a")]
    assert names == ["acme/empty", f"acme/{EVIL}", "acme/tool"]  # newest release first
    tool = repositories.find_element(By.XPATH, ".//tr[td/a[.='acme/tool']]")
    latest = tool.find_element(By.LINK_TEXT, "v1.1.0")  # not the pre-release
    assert latest.get_attribute("href") == f"{published.url}/acme/tool/releases/tag/v1.1.0"
    assert "\u2014" in browser.find_element(By.XPATH, "//tr[td/a[.='acme/empty']]").text
    assert root.find_element(By.LINK_TEXT, "local/packages").get_attribute("href") == (
        f"{published.url}/packages"
    )
    no_sideways_scroll(browser, width)
    if width == 375:  # each cell says what it is, as the table head is hidden
        labels = [td.get_attribute("data-label") for td in tool.find_elements(By.XPATH, "td")]
        assert labels == [None, "Latest", "Releases", "Updated"]
    screenshot(browser, f"index-{width}-{scheme}")
    assert_clean(browser, published.url)
    tool.find_element(By.LINK_TEXT, "acme/tool").click()
    wait_for(lambda: browser.current_url == f"{published.url}/acme/tool/releases")
    assert_clean(browser, published.url)


@every_screen
def test_the_releases_page_marks_the_latest_and_the_pre_release(
    browser, published, width: int, scheme: str
) -> None:
    open_page(browser, published.url, width=width, scheme=scheme, path="/acme/tool/releases")
    shown = browser.execute_script(TABLE, "table.list")
    assert [row[0].split()[0] for row in shown] == ["v2.0.0-rc.1", "v1.1.0", "v1.0.0"]
    badges = [b.text for b in browser.find_elements(By.CSS_SELECTOR, ".badge")]
    assert badges == ["Pre-release", "Latest"]
    assert all(row[-1].endswith("4") for row in shown)  # the assets column
    no_sideways_scroll(browser, width)
    screenshot(browser, f"releases-{width}-{scheme}")
    assert_clean(browser, published.url)
    browser.find_element(By.LINK_TEXT, "v1.0.0").click()
    wait_for(lambda: browser.current_url.endswith("/acme/tool/releases/tag/v1.0.0"))
    assert_clean(browser, published.url)


@every_screen
def test_a_release_page_shows_its_files_as_the_package_page_does(
    browser, published, width: int, scheme: str
) -> None:
    path = "/acme/tool/releases/tag/v1.1.0"
    open_page(browser, published.url, width=width, scheme=scheme, path=path)
    assert browser.find_element(By.TAG_NAME, "h1").text == "acme/tool v1.1.0"
    assert [b.text for b in browser.find_elements(By.CSS_SELECTOR, ".badge")] == ["Latest"]
    names = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table.files td > a")]
    assert sorted(names) == sorted(assets("1.1.0"))
    assert browser.find_element(By.ID, "count").text == "4 families, 4 packages"
    row = family_row(browser, "tool-1.1.0-linux-amd64.tar.gz")
    buttons = [b.text for b in row.find_elements(By.CSS_SELECTOR, "button")]
    assert buttons == ["Copy link", "Copy stable link", "Copy"]
    digest = published.digests["v1.1.0/tool-1.1.0-linux-amd64.tar.gz"]
    assert row.find_element(By.CSS_SELECTOR, "summary code").text.startswith(digest[:12])
    no_sideways_scroll(browser, width)
    screenshot(browser, f"release-{width}-{scheme}")

    search = browser.find_element(By.ID, "filter")
    search.send_keys("darwin")
    wait_for(lambda: browser.find_element(By.ID, "count").text.startswith("1 of 4 families"))
    visible = [a.text for a in browser.find_elements(By.CSS_SELECTOR, "table.files td > a")
               if a.is_displayed()]  # fmt: skip
    assert visible == ["tool-1.1.0-darwin-arm64.tar.gz"]
    assert_clean(browser, published.url)


def test_the_stable_link_of_a_release_page_leads_to_the_latest_release(browser, published) -> None:
    allow_clipboard(browser, published.url)
    open_page(browser, published.url, path="/acme/tool/releases/tag/v1.0.0")
    row = family_row(browser, "tool-1.0.0-linux-amd64.tar.gz")
    link = row.find_element(By.TAG_NAME, "a").get_attribute("href")
    web = f"{published.url}/acme/tool/releases/download"
    assert link == f"{web}/v1.0.0/tool-1.0.0-linux-amd64.tar.gz"
    download = requests.get(link, timeout=10)
    digest = published.digests["v1.0.0/tool-1.0.0-linux-amd64.tar.gz"]
    assert hashlib.sha256(download.content).hexdigest() == digest
    button = row.find_element(By.XPATH, ".//button[.='Copy stable link']")
    stable = f"{published.url}/acme/tool/releases/latest/download/tool-linux-amd64.tar.gz"
    assert button.get_attribute("title") == stable
    button.click()
    wait_for(lambda: button.text == "Copied")
    assert clipboard(browser) == stable
    # It always serves the newest release that is not a pre-release: v1.1.0's file.
    answer = requests.get(stable, allow_redirects=False, timeout=10)
    assert answer.headers["location"].endswith("/v1.1.0/tool-1.1.0-linux-amd64.tar.gz")
    assert_clean(browser, published.url)
