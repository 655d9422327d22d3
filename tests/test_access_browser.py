"""A private server in real Chromium: the page asks for the token with HTTP Basic auth
(any user name, the token as password), then the page and a download work with it."""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import StartServer
from test_page_browser import browser, downloads, wait_for  # noqa: F401 (fixtures)

By = pytest.importorskip("selenium.webdriver.common.by").By

READER = "reader-token-for-chromium"
PAYLOAD = b"private bytes \x00\x01" * 1000


def test_a_private_page_and_download_with_basic_auth(
    browser,  # noqa: F811
    downloads: Path,  # noqa: F811
    start_server: StartServer,
    tmp_path: Path,
) -> None:
    tokens = tmp_path / "tokens"
    tokens.write_text(f"{READER} read:local/packages\n")
    server = start_server(env={"TOKENS_FILE": str(tokens), "PRIVATE": "1"})
    assert server.upload("secret-tool-1.0.zip", PAYLOAD).status_code == 200
    host = server.url.removeprefix("http://")
    # Without credentials the browser gets the challenge and no listing.
    browser.get(f"{server.url}/packages")
    assert "secret-tool-1.0.zip" not in browser.page_source
    # With them (Chromium answers the Basic challenge from the URL's user info).
    browser.get(f"http://anyone:{READER}@{host}/packages")
    wait_for(lambda: browser.find_elements(By.LINK_TEXT, "secret-tool-1.0.zip"))
    browser.find_element(By.LINK_TEXT, "secret-tool-1.0.zip").click()
    target = downloads / "secret-tool-1.0.zip"
    wait_for(lambda: target.exists() and target.stat().st_size == len(PAYLOAD), 20)
    assert target.read_bytes() == PAYLOAD
