"""Drive a real headless Chromium against the live server, as a person would use the page.

Needs Debian's ``chromium`` and ``chromium-driver`` and PyPI's ``selenium`` (``.ci/browser.sh``
installs them); Selenium is pointed at those binaries so it never downloads a browser.
Screenshots go to ``artifacts/screenshots/`` for CI to keep and for people to look at.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
import requests

from release_server.page import PAGE_HEADERS

CHROMIUM = shutil.which("chromium")
CHROMEDRIVER = shutil.which("chromedriver")
if not (CHROMIUM and CHROMEDRIVER):
    pytest.skip(
        "browser tests need Debian's chromium and chromium-driver: run `bash .ci/browser.sh`",
        allow_module_level=True,
    )
webdriver = pytest.importorskip(
    "selenium.webdriver", reason="browser tests need selenium: run `bash .ci/browser.sh`"
)
from selenium.common.exceptions import NoAlertPresentException  # noqa: E402
from selenium.webdriver.chrome.service import Service  # noqa: E402
from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402
from selenium.webdriver.common.by import By  # noqa: E402
from selenium.webdriver.common.keys import Keys  # noqa: E402
from selenium.webdriver.remote.webdriver import WebDriver  # noqa: E402
from selenium.webdriver.support.ui import WebDriverWait  # noqa: E402

SCREENSHOTS = Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
EVIL = "<img src=x onerror=alert(1)>.zip"
FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
)


@pytest.fixture(scope="module")
def downloads(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="module")
def browser(tmp_path_factory: pytest.TempPathFactory, downloads: Path) -> Iterator[WebDriver]:
    """One Chromium for the module, on a fresh profile, logging console and network."""
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for flag in FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('profile')}")
    options.add_experimental_option(
        "prefs",
        {"download.default_directory": str(downloads), "download.prompt_for_download": False},
    )
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    yield driver
    driver.quit()


def open_page(driver: WebDriver, url: str, *, width: int = 1280, scheme: str = "light") -> None:
    """Load the page at a viewport and colour scheme, after emptying the logs."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": width,
            "height": 812 if width < 600 else 900,
            "deviceScaleFactor": 1,
            "mobile": width < 600,
        },
    )
    driver.execute_cdp_cmd(
        "Emulation.setEmulatedMedia",
        {"features": [{"name": "prefers-color-scheme", "value": scheme}]},
    )
    driver.get_log("browser")
    driver.get_log("performance")
    driver.get(url + "/packages")
    WebDriverWait(driver, 10).until(
        lambda d: d.execute_script("return document.readyState") == "complete"
    )


def assert_clean(driver: WebDriver, base: str) -> None:
    """No console message of any kind (CSP violations are errors there), no alert, and
    no request that leaves the server (a data: favicon is the only other thing allowed)."""
    assert driver.get_log("browser") == []
    with pytest.raises(NoAlertPresentException):
        driver.switch_to.alert  # noqa: B018
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message["method"] == "Network.requestWillBeSent":
            url = message["params"]["request"]["url"]
            assert url.startswith((base + "/", "data:image/svg+xml,")), url


def rows(driver: WebDriver) -> list[list[str]]:
    """The text of each visible row's cells, read in one call (there may be 1,000 rows)."""
    return driver.execute_script(
        "return Array.from(document.querySelectorAll('tbody tr'))"
        ".filter((row) => row.getClientRects().length)"
        ".map((row) => Array.from(row.cells, (cell) => cell.innerText.trim()))"
    )


def screenshot(driver: WebDriver, name: str) -> None:
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    shot = driver.execute_cdp_cmd("Page.captureScreenshot", {"format": "png"})
    (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


def wait_for(condition: Callable[[], object], timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.1)


PACKAGES = {
    "spec-kit-template-claude-sh-v0.0.57.zip": b"claude" * 300,
    EVIL: b"not an image",
    "release-server-linux-x86_64-musl-static-build-2024-01-31-with-a-very-long-name.tar.gz": (
        os.urandom(3 * 1024 * 1024 + 123)
    ),
    "beta notes & café.txt": b"notes\n",
}

SIZES = dict(zip(PACKAGES, ["1.8 KiB", "12 B", "3.0 MiB", "6 B"], strict=True))


@pytest.fixture
def filled(server):
    """The server with PACKAGES uploaded in order (so the last one is the newest)."""
    for name, data in PACKAGES.items():
        assert server.upload(name, data).status_code == 200
    return server


def test_response_headers_carry_the_strict_policy(filled) -> None:
    response = requests.get(filled.url + "/packages", headers={"Accept": "text/html"}, timeout=10)
    assert response.headers["content-type"].startswith("text/html")
    for header, value in PAGE_HEADERS.items():
        assert response.headers[header] == value
    assert "default-src 'none'" in response.headers["content-security-policy"]


def test_lists_every_package_newest_first(browser, filled) -> None:
    listed = requests.get(filled.url + "/packages?format=json", timeout=10).json()
    open_page(browser, filled.url)
    shown = rows(browser)
    assert [row[0] for row in shown] == list(reversed(PACKAGES))
    by_name = {row[0]: row for row in shown}
    for item in listed:
        name, size, uploaded, count, sha = by_name[item["name"]]
        assert size == SIZES[name]
        assert uploaded == item["created_at"][:16].replace("T", " ")
        assert count == "0"
        assert sha.startswith(hashlib.sha256(PACKAGES[name]).hexdigest())
    assert browser.find_element(By.ID, "filter").is_displayed(), "the hashed script did not run"
    assert browser.execute_script("return getComputedStyle(document.body).maxWidth") == "1344px"
    assert_clean(browser, filled.url)


def test_hostile_name_is_text_and_runs_nothing(browser, filled) -> None:
    open_page(browser, filled.url)
    assert browser.find_elements(By.TAG_NAME, "img") == []
    link = browser.find_element(By.LINK_TEXT, EVIL)
    assert link.get_attribute("href").endswith(
        "/assets/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.zip"
    )
    assert_clean(browser, filled.url)


def test_clicking_a_name_downloads_the_exact_bytes_and_counts_it(
    browser, filled, downloads: Path
) -> None:
    name = next(n for n in PACKAGES if n.startswith("release-server"))
    open_page(browser, filled.url)
    browser.find_element(By.LINK_TEXT, name).click()
    target = downloads / name
    wait_for(lambda: target.exists() and target.stat().st_size == len(PACKAGES[name]), 20)
    assert target.read_bytes() == PACKAGES[name]

    def count_shown() -> bool:
        open_page(browser, filled.url)
        return browser.find_element(By.XPATH, f"//tr[td/a[.='{name}']]/td[4]").text == "1"

    wait_for(count_shown, 15)
    assert_clean(browser, filled.url)


def test_keyboard_only_filter_narrows_as_you_type(browser, filled) -> None:
    open_page(browser, filled.url)
    for _ in range(2):
        ActionChains(browser).send_keys(Keys.TAB).perform()
    field = browser.switch_to.active_element
    assert field.get_attribute("id") == "filter"
    outline = browser.execute_script(
        "const style = getComputedStyle(document.activeElement);"
        "return [style.outlineStyle, style.outlineWidth]"
    )
    assert outline == ["solid", "3px"], "keyboard focus must be visible"

    seen = []
    for key in "BETA":
        field.send_keys(key)
        seen.append(len(rows(browser)))
    assert seen == [2, 1, 1, 1]
    assert [row[0] for row in rows(browser)] == ["beta notes & café.txt"]
    assert browser.find_element(By.ID, "count").text == "1 of 4 packages"
    screenshot(browser, "filtered-1280-light")

    field.send_keys(" zzz")
    assert rows(browser) == []
    assert browser.find_element(By.ID, "none").is_displayed()
    field.send_keys(Keys.ESCAPE)
    assert len(rows(browser)) == 4
    assert browser.find_element(By.ID, "count").text == "4 packages"

    field.send_keys(Keys.TAB)
    first = browser.switch_to.active_element
    assert first.tag_name == "a" and first.text == list(PACKAGES)[-1]
    assert_clean(browser, filled.url)


def test_copy_button_puts_the_sha256_on_the_clipboard(browser, filled) -> None:
    browser.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"], "origin": filled.url},
    )
    open_page(browser, filled.url)
    button = browser.find_element(By.CSS_SELECTOR, "tbody tr:nth-child(3) button")
    assert button.get_attribute("aria-label") == f"Copy SHA-256 of {EVIL}"
    button.send_keys(Keys.ENTER)
    wait_for(lambda: button.text == "Copied")
    screenshot(browser, "copied-1280-light")
    clipboard = browser.execute_async_script(
        "navigator.clipboard.readText().then(arguments[0], (e) => arguments[0](String(e)))"
    )
    assert clipboard == hashlib.sha256(PACKAGES[EVIL]).hexdigest()
    assert_clean(browser, filled.url)


def test_copy_falls_back_to_selecting_the_text(browser, filled) -> None:
    open_page(browser, filled.url, width=375, scheme="dark")
    browser.execute_script("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    button = browser.find_element(By.CSS_SELECTOR, "tbody tr:first-child button")
    button.click()
    wait_for(lambda: button.text == "Selected: press Ctrl+C")
    screenshot(browser, "copy-fallback-375-dark")
    selected = browser.execute_script("return getSelection().toString()")
    assert selected == hashlib.sha256(PACKAGES[list(PACKAGES)[-1]]).hexdigest()
    assert_clean(browser, filled.url)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 1280])
def test_readable_at_phone_and_desktop_widths(browser, filled, width: int, scheme: str) -> None:
    open_page(browser, filled.url, width=width, scheme=scheme)
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width
    background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert background == ("rgb(13, 17, 23)" if scheme == "dark" else "rgb(255, 255, 255)")
    for cell in browser.find_elements(By.CSS_SELECTOR, "tbody td"):
        assert cell.is_displayed() and cell.rect["width"] > 0
    screenshot(browser, f"page-{width}-{scheme}")
    assert_clean(browser, filled.url)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 1280])
def test_empty_state_reads_well(browser, server, width: int, scheme: str) -> None:
    open_page(browser, server.url, width=width, scheme=scheme)
    heading = browser.find_element(By.CSS_SELECTOR, ".empty h2")
    assert heading.text == "No packages yet"
    assert f"{server.url}/upload" in browser.find_element(By.CSS_SELECTOR, ".empty .cmd code").text
    assert browser.find_elements(By.TAG_NAME, "table") == []
    assert browser.execute_script("return document.documentElement.scrollWidth") <= width
    screenshot(browser, f"empty-{width}-{scheme}")
    assert_clean(browser, server.url)


def test_a_thousand_packages_load_fast_and_light(browser, start_server, tmp_path: Path) -> None:
    """Files copied into storage by hand are listed too: the quickest way to get 1,000."""
    storage = tmp_path / "many"
    storage.mkdir()
    start = time.time_ns() - 1000 * 60 * 10**9
    for i in range(1000):
        path = storage / f"spec-kit-template-claude-sh-v0.{i // 100}.{i % 100}.zip"
        path.write_bytes(i.to_bytes(4, "big") * 64)
        os.utime(path, ns=(start + i * 60 * 10**9,) * 2)
    server = start_server(storage=storage, args=["--max-packages", "0"])
    requests.get(server.url + "/packages", timeout=60)  # digests are computed once, here

    open_page(browser, server.url)
    timing = browser.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return {bytes: n.decodedBodySize, transferred: n.transferSize,"
        " response: n.responseEnd - n.requestStart,"
        " ready: n.domContentLoadedEventEnd, load: n.loadEventEnd};"
    )
    filter_ms = browser.execute_script(
        "const f = document.getElementById('filter'); const t = performance.now();"
        "f.value = 'v0.9.99'; f.dispatchEvent(new Event('input'));"
        "document.body.offsetHeight; return performance.now() - t;"
    )
    assert len(rows(browser)) == 1
    assert browser.find_element(By.ID, "count").text == "1 of 1,000 packages"
    report = {**timing, "filter_ms": filter_ms, "rows": 1000}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS.parent / "page-1000.json").write_text(json.dumps(report, indent=2) + "\n")
    print(report)
    assert timing["bytes"] < 500_000
    assert timing["load"] < 3000
    assert filter_ms < 300
    assert_clean(browser, server.url)
