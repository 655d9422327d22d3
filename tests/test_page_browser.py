"""Drive a real headless Chromium against the live server, as a person would use the page.

Needs Debian's ``chromium`` and ``chromium-driver`` and PyPI's ``selenium`` (``.ci/browser.sh``
installs them); Selenium is pointed at those binaries so it never downloads a browser.
Screenshots go to ``artifacts/screenshots/`` (or ``$PAGE_SHOTS``) for CI to keep and for
people to look at.
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

SCREENSHOTS = Path(
    os.environ.get("PAGE_SHOTS")
    or Path(__file__).resolve().parent.parent / "artifacts" / "screenshots"
)
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


def open_page(
    driver: WebDriver,
    url: str,
    *,
    width: int = 1280,
    height: int | None = None,
    scheme: str = "light",
    path: str = "/packages",
) -> None:
    """Load the page at a viewport and colour scheme, after emptying the logs."""
    driver.execute_cdp_cmd(
        "Emulation.setDeviceMetricsOverride",
        {
            "width": width,
            "height": height or (812 if width < 600 else 900),
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
    driver.get(url + path)
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


ROWS = """
const visible = (row) => row.getClientRects().length > 0;
return Array.from(document.querySelectorAll(arguments[0])).filter(visible).map((row) => [
  row.cells[0].querySelector("a").textContent,
  ...Array.from(row.cells).slice(1).map((cell) => cell.innerText.trim()),
]);
"""


def rows(driver: WebDriver) -> list[list[str]]:
    """Each visible family row (its newest file): the name, then the text of the other cells
    (version, size, uploaded, downloads, SHA-256), read in one call (there may be 1,000)."""
    return driver.execute_script(ROWS, "tbody tr:first-child")


def older_rows(driver: WebDriver) -> list[list[str]]:
    """The same for the visible rows of older versions."""
    return driver.execute_script(ROWS, "tbody tr + tr")


def family_row(driver: WebDriver, name: str):
    """The row whose name link is ``name``."""
    return driver.find_element(By.XPATH, f"//tr[td/a[.='{name}']]")


def clipboard(driver: WebDriver) -> str:
    return driver.execute_async_script(
        "navigator.clipboard.readText().then(arguments[0], (e) => arguments[0](String(e)))"
    )


def allow_clipboard(driver: WebDriver, url: str) -> None:
    driver.execute_cdp_cmd(
        "Browser.grantPermissions",
        {"permissions": ["clipboardReadWrite", "clipboardSanitizedWrite"], "origin": url},
    )


def no_sideways_scroll(driver: WebDriver, width: int) -> None:
    assert driver.execute_script("return document.documentElement.scrollWidth") <= width


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
VERSIONS = dict(zip(PACKAGES, ["v0.0.57", "\u2014", "2024-01-31", "\u2014"], strict=True))


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
    assert [row[0] for row in shown] == list(reversed(PACKAGES))  # four families of one
    by_name = {row[0]: row for row in shown}
    for item in listed:
        name, version, size, uploaded, count, sha = by_name[item["name"]]
        assert version == VERSIONS[name]
        assert size == SIZES[name]
        assert uploaded == item["created_at"].replace("T", " ").replace("Z", " UTC")
        assert count == "0"
        assert sha.split()[0] == hashlib.sha256(PACKAGES[name]).hexdigest()[:12]
    assert browser.find_element(By.ID, "filter").is_displayed(), "the hashed script did not run"
    assert browser.find_element(By.ID, "count").text == "4 families, 4 packages"
    assert browser.execute_script("return getComputedStyle(document.body).maxWidth") == "1344px"
    assert_clean(browser, filled.url)


def test_hostile_name_is_text_and_runs_nothing(browser, filled) -> None:
    open_page(browser, filled.url)
    assert browser.find_elements(By.TAG_NAME, "img") == []
    link = browser.find_element(By.LINK_TEXT, EVIL)
    assert link.get_attribute("href").endswith(
        "/assets/%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.zip"
    )
    buttons = browser.find_elements(By.CSS_SELECTOR, "td:last-child button")
    labels = {button.get_attribute("aria-label") for button in buttons}
    assert labels == {f"Copy SHA-256 of {name}" for name in PACKAGES}  # set as text, not HTML
    buttons = browser.find_elements(By.CSS_SELECTOR, ".acts button")
    labels = {button.get_attribute("aria-label") for button in buttons}
    assert {f"Copy link to {name}" for name in PACKAGES} < labels
    assert "Copy stable link to the newest spec-kit-template-claude-sh.zip" in labels
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
        return browser.find_element(By.XPATH, f"//tr[td/a[.='{name}']]/td[5]").text == "1"

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
    assert browser.find_element(By.ID, "count").text == "1 of 4 families, 1 of 4 packages"
    screenshot(browser, "filtered-1280-light")

    field.send_keys(" zzz")
    assert rows(browser) == []
    assert browser.find_element(By.ID, "none").is_displayed()
    field.send_keys(Keys.ESCAPE)
    assert len(rows(browser)) == 4
    assert browser.find_element(By.ID, "count").text == "4 families, 4 packages"

    field.send_keys(Keys.TAB)
    first = browser.switch_to.active_element
    assert first.tag_name == "a" and first.text == list(PACKAGES)[-1]
    assert_clean(browser, filled.url)


def test_copy_button_puts_the_sha256_on_the_clipboard(browser, filled) -> None:
    allow_clipboard(browser, filled.url)
    open_page(browser, filled.url)
    button = browser.find_element(By.CSS_SELECTOR, "tbody:nth-of-type(3) td:last-child button")
    assert button.get_attribute("aria-label") == f"Copy SHA-256 of {EVIL}"
    button.send_keys(Keys.ENTER)
    wait_for(lambda: button.text == "Copied")
    screenshot(browser, "copied-1280-light")
    assert clipboard(browser) == hashlib.sha256(PACKAGES[EVIL]).hexdigest()
    wait_for(lambda: button.text == "Copy", 6)
    assert_clean(browser, filled.url)


def test_copy_falls_back_to_selecting_the_text(browser, filled) -> None:
    open_page(browser, filled.url, width=375, scheme="dark")
    browser.execute_script("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    button = browser.find_element(By.CSS_SELECTOR, "tbody:first-of-type td:last-child button")
    button.click()
    wait_for(lambda: button.text == "Selected: press Ctrl+C")
    no_sideways_scroll(browser, 375)
    assert button.rect["x"] + button.rect["width"] <= 375
    screenshot(browser, "copy-fallback-375-dark")
    selected = browser.execute_script("return getSelection().toString()")
    assert selected == hashlib.sha256(PACKAGES[list(PACKAGES)[-1]]).hexdigest()
    assert_clean(browser, filled.url)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 1280])
def test_readable_at_phone_and_desktop_widths(browser, filled, width: int, scheme: str) -> None:
    open_page(browser, filled.url, width=width, scheme=scheme)
    no_sideways_scroll(browser, width)
    background = browser.execute_script("return getComputedStyle(document.body).backgroundColor")
    assert background == ("rgb(13, 17, 23)" if scheme == "dark" else "rgb(255, 255, 255)")
    # (at 375 the name cell is display: contents, so its link and buttons are the boxes)
    for cell in browser.find_elements(By.CSS_SELECTOR, "td + td, td > a, .acts"):
        assert cell.is_displayed() and cell.rect["width"] > 0
    screenshot(browser, f"page-{width}-{scheme}")
    assert_clean(browser, filled.url)


# What a real server holds: two Spec Kit releases (six templates each), a wheel between them
# and a checksum file, uploaded oldest first, of sizes from bytes to megabytes.
AGENTS = [f"{agent}-{shell}" for agent in ("claude", "gemini", "copilot") for shell in ("sh", "ps")]
WHEEL = "release_server-0.1.0-py3-none-any.whl"
REALISTIC = {
    **{f"spec-kit-template-{a}-v0.0.77.zip": 50 * 1024 + 7 * i for i, a in enumerate(AGENTS)},
    WHEEL: 38 * 1024 + 911,
    **{f"spec-kit-template-{a}-v0.0.78.zip": 51 * 1024 + 9 * i for i, a in enumerate(AGENTS)},
    "SHA256SUMS": 1012,
}
NEWEST = ["SHA256SUMS", *(f"spec-kit-template-{a}-v0.0.78.zip" for a in reversed(AGENTS)), WHEEL]
CLAUDE = "spec-kit-template-claude-sh-v0.0.78.zip"
CLAUDE_OLD = "spec-kit-template-claude-sh-v0.0.77.zip"


@pytest.fixture
def realistic(start_server):
    """A server (keeping every file) with REALISTIC uploaded in order, and their digests."""
    server = start_server(args=["--max-packages", "0"])
    digests = {}
    for name, size in REALISTIC.items():
        data = os.urandom(size)
        assert server.upload(name, data).status_code == 200
        digests[name] = hashlib.sha256(data).hexdigest()
    server.digests = digests
    return server


def test_one_row_per_family_with_its_newest_file(browser, realistic) -> None:
    open_page(browser, realistic.url, width=1280, height=800)
    shown = rows(browser)
    assert [row[0] for row in shown] == NEWEST
    assert [row[1] for row in shown] == ["\u2014", *["v0.0.78"] * 6, "0.1.0"]
    assert older_rows(browser) == [], "older versions start folded"
    assert browser.find_element(By.ID, "count").text == "8 families, 14 packages"
    summaries = [s.text for s in browser.find_elements(By.CSS_SELECTOR, ".more summary")]
    assert summaries == ["1 older version"] * 6
    links = {
        row[0]: [
            b.text for b in family_row(browser, row[0]).find_elements(By.CSS_SELECTOR, "button")
        ]
        for row in shown
    }
    assert links["SHA256SUMS"] == ["Copy link", "Copy"]
    assert links[WHEEL] == ["Copy link", "Copy stable link", "Copy"]
    assert links[CLAUDE] == ["Copy link", "Copy stable link", "Copy"]
    for name in NEWEST:
        assert (
            family_row(browser, name).find_element(By.TAG_NAME, "a").get_attribute("href")
            == f"{realistic.url}/assets/{name}"
        )
    assert_clean(browser, realistic.url)


def test_older_versions_open_by_keyboard_and_by_click(browser, realistic) -> None:
    open_page(browser, realistic.url)
    row = family_row(browser, CLAUDE)
    row.find_element(By.TAG_NAME, "a").send_keys("")  # focus the name link, as Tab would
    for expected in ("Copy link", "Copy stable link", "1 older version"):
        ActionChains(browser).send_keys(Keys.TAB).perform()
        assert browser.switch_to.active_element.text == expected
    ActionChains(browser).send_keys(Keys.ENTER).perform()
    (old,) = older_rows(browser)
    assert old[:2] == [CLAUDE_OLD, "v0.0.77"]
    assert old[2] == "50.0 KiB" and old[5].split()[0] == realistic.digests[CLAUDE_OLD][:12]
    link = browser.find_element(By.LINK_TEXT, CLAUDE_OLD)
    assert link.get_attribute("href") == f"{realistic.url}/assets/{CLAUDE_OLD}"
    for _ in range(3):  # past this row's hash and its Copy button
        ActionChains(browser).send_keys(Keys.TAB).perform()
    assert browser.switch_to.active_element == link, "the older version is next in Tab order"
    screenshot(browser, "older-open-1280-light")

    summary = row.find_element(By.CSS_SELECTOR, ".more summary")
    summary.send_keys(Keys.SPACE)
    assert older_rows(browser) == []
    summary.click()
    assert [r[0] for r in older_rows(browser)] == [CLAUDE_OLD]
    summary.click()
    assert older_rows(browser) == []
    assert_clean(browser, realistic.url)


def test_copy_puts_the_download_and_the_stable_link_on_the_clipboard(browser, realistic) -> None:
    allow_clipboard(browser, realistic.url)
    open_page(browser, realistic.url)
    for name, label, url in [
        (CLAUDE, "Copy stable link", "/latest/download/spec-kit-template-claude-sh.zip"),
        (CLAUDE, "Copy link", f"/assets/{CLAUDE}"),
        (WHEEL, "Copy stable link", "/latest/download/release_server-py3-none-any.whl"),
    ]:
        button = family_row(browser, name).find_element(By.XPATH, f".//button[.='{label}']")
        assert button.get_attribute("title") == realistic.url + url
        button.click()
        wait_for(lambda button=button: button.text == "Copied")
        assert clipboard(browser) == realistic.url + url
    screenshot(browser, "copied-stable-1280-light")
    wait_for(lambda: button.text == "Copy stable link", 6)
    assert_clean(browser, realistic.url)


def test_every_stable_link_leads_to_its_rows_file(browser, realistic) -> None:
    """The page and the server agree: each stable link redirects to the newest file shown."""
    open_page(browser, realistic.url)
    pairs = browser.execute_script(
        "return Array.from(document.querySelectorAll('tr[data-stable]'), (row) => ["
        " row.querySelector('button[title*=\"/latest/download/\"]').title,"
        " row.querySelector('a').href])"
    )
    assert len(pairs) == 7  # every family but SHA256SUMS
    for stable, download in pairs:
        response = requests.get(stable, allow_redirects=False, timeout=10)
        assert response.status_code == 302, stable
        assert response.headers["location"] == download
    assert_clean(browser, realistic.url)


def test_copy_of_the_stable_link_falls_back_to_showing_and_selecting_it(browser, realistic) -> None:
    open_page(browser, realistic.url, width=375, scheme="dark")
    browser.execute_script("Object.defineProperty(navigator, 'clipboard', {value: undefined})")
    button = family_row(browser, CLAUDE).find_element(By.XPATH, ".//button[.='Copy stable link']")
    button.click()
    wait_for(lambda: button.text == "Selected: press Ctrl+C")
    url = f"{realistic.url}/latest/download/spec-kit-template-claude-sh.zip"
    assert browser.execute_script("return getSelection().toString()") == url
    no_sideways_scroll(browser, 375)
    browser.execute_script("arguments[0].scrollIntoView({block: 'center'})", button)
    screenshot(browser, "copy-stable-fallback-375-dark")
    assert_clean(browser, realistic.url)


def test_a_hostile_versioned_name_gets_an_encoded_stable_link(browser, start_server) -> None:
    server = start_server(args=["--max-packages", "0"])
    for version in ("1.0", "1.1"):
        assert server.upload(f"<img src=x onerror=alert(1)>-{version}.zip", b"x").status_code == 200
    allow_clipboard(browser, server.url)
    open_page(browser, server.url)
    assert browser.find_elements(By.TAG_NAME, "img") == []
    assert [row[:2] for row in rows(browser)] == [["<img src=x onerror=alert(1)>-1.1.zip", "1.1"]]
    button = browser.find_element(By.XPATH, "//button[.='Copy stable link']")
    label = "Copy stable link to the newest <img src=x onerror=alert(1)>.zip"
    assert button.get_attribute("aria-label") == label
    button.click()
    wait_for(lambda: button.text == "Copied")
    encoded = "%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E.zip"
    assert clipboard(browser) == f"{server.url}/latest/download/{encoded}"
    assert_clean(browser, server.url)


def test_the_filter_shows_families_and_opens_the_older_list_for_an_old_match(
    browser, realistic
) -> None:
    open_page(browser, realistic.url)
    field = browser.find_element(By.ID, "filter")
    count = browser.find_element(By.ID, "count")
    field.send_keys("claude")
    assert [row[0] for row in rows(browser)] == [
        "spec-kit-template-claude-ps-v0.0.78.zip",
        CLAUDE,
    ]
    assert older_rows(browser) == [], "the newest matches: the list stays folded"
    assert count.text == "2 of 8 families, 4 of 14 packages"

    field.send_keys(" sh 0.0.77")
    assert [row[0] for row in rows(browser)] == [CLAUDE]
    assert [row[0] for row in older_rows(browser)] == [CLAUDE_OLD]
    assert count.text == "1 of 8 families, 1 of 14 packages"
    screenshot(browser, "filter-old-match-1280-light")

    field.clear()
    field.send_keys("v0.0.77")
    assert [row[0] for row in rows(browser)] == NEWEST[1:7]
    assert len(older_rows(browser)) == 6
    assert count.text == "6 of 8 families, 6 of 14 packages"

    field.send_keys(Keys.ESCAPE)
    assert [row[0] for row in rows(browser)] == NEWEST
    assert older_rows(browser) == [], "lists the filter opened close again"
    assert count.text == "8 families, 14 packages"

    family_row(browser, CLAUDE).find_element(By.CSS_SELECTOR, ".more summary").click()
    field.send_keys("claude-sh")
    field.send_keys(Keys.ESCAPE)
    assert [row[0] for row in older_rows(browser)] == [CLAUDE_OLD], "what you open stays open"
    assert_clean(browser, realistic.url)


def test_a_link_with_q_for_an_old_version_opens_its_list(browser, realistic) -> None:
    open_page(browser, realistic.url, path="/packages?q=gemini-ps-v0.0.77")
    assert [row[0] for row in rows(browser)] == ["spec-kit-template-gemini-ps-v0.0.78.zip"]
    assert [row[0] for row in older_rows(browser)] == ["spec-kit-template-gemini-ps-v0.0.77.zip"]
    assert_clean(browser, realistic.url)


LAYOUT = """
const names = Array.from(document.querySelectorAll("tbody td:first-child > a"))
  .filter((a) => a.getClientRects().length);
const table = document.querySelector("table").getBoundingClientRect().width;
const hash = document.querySelector("th:last-child").getBoundingClientRect().width;
return {
  broken: names.filter((a) => a.getClientRects().length !== 1).map((a) => a.textContent),
  share: hash / table,
  overflow: document.documentElement.scrollWidth - innerWidth,
};
"""


def open_all(driver: WebDriver) -> None:
    for summary in driver.find_elements(By.CSS_SELECTOR, ".more summary"):
        summary.click()


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_at_1280_every_name_fits_on_one_line_and_the_hash_column_is_narrow(
    browser, realistic, scheme: str
) -> None:
    open_page(browser, realistic.url, width=1280, height=800, scheme=scheme)
    layout = browser.execute_script(LAYOUT)
    assert layout["broken"] == [], "these names wrap"
    assert layout["share"] < 0.2, "the SHA-256 column is too wide"
    assert layout["overflow"] <= 0
    screenshot(browser, f"realistic-1280-{scheme}")

    open_all(browser)
    for summary in browser.find_elements(By.CSS_SELECTOR, "td:last-child summary")[:2]:
        summary.click()
    assert len(older_rows(browser)) == 6
    layout = browser.execute_script(LAYOUT)
    assert layout["broken"] == [] and layout["share"] < 0.2, "opening widens the columns"
    assert layout["overflow"] <= 0
    screenshot(browser, f"realistic-1280-open-{scheme}")
    assert_clean(browser, realistic.url)


@pytest.mark.parametrize("scheme", ["light", "dark"])
def test_at_375_the_rows_stay_readable(browser, realistic, scheme: str) -> None:
    open_page(browser, realistic.url, width=375, scheme=scheme)
    no_sideways_scroll(browser, 375)
    screenshot(browser, f"realistic-375-{scheme}")
    open_all(browser)
    for row in browser.find_elements(By.CSS_SELECTOR, "tbody tr"):
        summary = row.find_element(By.CSS_SELECTOR, "td:last-child summary")
        button = row.find_element(By.CSS_SELECTOR, "td:last-child button")
        assert summary.is_displayed() and button.is_displayed()
        assert summary.rect["x"] + summary.rect["width"] <= button.rect["x"]
        for control in row.find_elements(By.CSS_SELECTOR, "button, summary, a"):
            assert control.rect["x"] >= 0 and control.rect["x"] + control.rect["width"] <= 375
    browser.find_element(By.CSS_SELECTOR, "td:last-child summary").click()
    full = browser.find_element(By.CSS_SELECTOR, "td:last-child details > code")
    assert full.rect["x"] + full.rect["width"] <= 375
    no_sideways_scroll(browser, 375)
    browser.execute_script("document.querySelector('tbody:nth-of-type(2)').scrollIntoView()")
    screenshot(browser, f"realistic-375-open-{scheme}")
    assert_clean(browser, realistic.url)


def test_the_short_hash_expands_and_copy_takes_the_full_one(browser, realistic) -> None:
    allow_clipboard(browser, realistic.url)
    open_page(browser, realistic.url)
    digest = realistic.digests[WHEEL]
    row = family_row(browser, WHEEL)
    summary = row.find_element(By.CSS_SELECTOR, "td:last-child summary")
    full = row.find_element(By.CSS_SELECTOR, "td:last-child details > code")
    assert summary.text == digest[:12]  # the marker and the ellipsis are CSS
    assert not full.is_displayed()

    summary.send_keys(Keys.ENTER)
    assert full.is_displayed() and full.text.replace("\n", "") == digest
    summary.send_keys(Keys.ENTER)
    assert not full.is_displayed()

    button = row.find_element(By.CSS_SELECTOR, "td:last-child button")
    assert button.get_attribute("aria-label") == f"Copy SHA-256 of {WHEEL}"
    button.click()
    wait_for(lambda: button.text == "Copied")
    assert clipboard(browser) == digest
    assert_clean(browser, realistic.url)


def test_typing_in_the_filter_keeps_it_in_the_url(browser, realistic) -> None:
    open_page(browser, realistic.url, path="/packages?format=html")
    entries = browser.execute_script("window.notReloaded = true; return history.length")
    field = browser.find_element(By.ID, "filter")
    field.send_keys("claude")
    wait_for(lambda: browser.execute_script("return location.search") == "?format=html&q=claude")
    assert len(rows(browser)) == 2
    field.send_keys(" café")
    search = "?format=html&q=claude+caf%C3%A9"
    wait_for(lambda: browser.execute_script("return location.search") == search)
    field.send_keys(Keys.ESCAPE)
    wait_for(lambda: browser.execute_script("return location.search") == "?format=html")
    assert len(rows(browser)) == len(NEWEST)
    assert browser.execute_script("return window.notReloaded && history.length") == entries
    assert_clean(browser, realistic.url)


@pytest.mark.parametrize("path", ["/packages?q=CLAUDE+sh", "/packages?format=html&q=claude%20sh"])
def test_a_link_with_q_opens_filtered(browser, realistic, path: str) -> None:
    open_page(browser, realistic.url, path=path)
    field = browser.find_element(By.ID, "filter")
    assert field.get_attribute("value").lower() == "claude sh"
    assert [row[0] for row in rows(browser)] == [CLAUDE]
    assert older_rows(browser) == []
    assert browser.find_element(By.ID, "count").text == "1 of 8 families, 2 of 14 packages"
    screenshot(browser, "shared-link-1280-light")
    field.send_keys(Keys.ESCAPE)
    assert len(rows(browser)) == len(NEWEST)
    assert_clean(browser, realistic.url)


def test_a_link_with_q_matching_nothing_says_so(browser, realistic) -> None:
    open_page(browser, realistic.url, path="/packages?q=%3Cscript%3E")
    assert browser.find_element(By.ID, "filter").get_attribute("value") == "<script>"
    assert rows(browser) == [] and older_rows(browser) == []
    assert browser.find_element(By.ID, "none").is_displayed()
    assert_clean(browser, realistic.url)


def test_json_ignores_q(realistic) -> None:
    for params in ({"q": "claude"}, {"q": "claude", "format": "json"}):
        listed = requests.get(realistic.url + "/packages", params=params, timeout=10).json()
        assert len(listed) == len(REALISTIC)


@pytest.mark.parametrize("scheme", ["light", "dark"])
@pytest.mark.parametrize("width", [375, 1280])
def test_empty_state_reads_well(browser, server, width: int, scheme: str) -> None:
    open_page(browser, server.url, width=width, scheme=scheme)
    heading = browser.find_element(By.CSS_SELECTOR, ".empty h2")
    assert heading.text == "No packages yet"
    assert f"{server.url}/upload" in browser.find_element(By.CSS_SELECTOR, ".empty .cmd code").text
    assert browser.find_elements(By.TAG_NAME, "table") == []
    no_sideways_scroll(browser, width)
    screenshot(browser, f"empty-{width}-{scheme}")
    assert_clean(browser, server.url)


def test_a_thousand_packages_load_fast_and_light(browser, start_server, tmp_path: Path) -> None:
    """Files copied into storage by hand are listed too: the quickest way to get 1,000.
    A hundred families of ten versions each, released together (newest last)."""
    storage = tmp_path / "many"
    storage.mkdir()
    start = time.time_ns() - 1000 * 60 * 10**9
    for i in range(1000):
        version, family = divmod(i, 100)
        path = storage / f"spec-kit-template-agent{family:02d}-sh-v0.{version}.0.zip"
        path.write_bytes(i.to_bytes(4, "big") * 64)
        os.utime(path, ns=(start + i * 60 * 10**9,) * 2)
    server = start_server(storage=storage, args=["--max-packages", "0"])
    requests.get(server.url + "/packages", timeout=60)  # digests are computed once, here

    open_page(browser, server.url)
    assert len(rows(browser)) == 100 and older_rows(browser) == []
    timing = browser.execute_script(
        "const n = performance.getEntriesByType('navigation')[0];"
        "return {bytes: n.decodedBodySize, transferred: n.transferSize,"
        " response: n.responseEnd - n.requestStart,"
        " ready: n.domContentLoadedEventEnd, load: n.loadEventEnd};"
    )
    filter_ms = browser.execute_script(
        "const f = document.getElementById('filter'); const t = performance.now();"
        "f.value = 'v0.3.0'; f.dispatchEvent(new Event('input'));"
        "document.body.offsetHeight; return performance.now() - t;"
    )
    assert len(rows(browser)) == 100 and len(older_rows(browser)) == 100
    assert browser.find_element(By.ID, "count").text == (
        "100 of 100 families, 100 of 1,000 packages"
    )
    report = {**timing, "filter_ms": filter_ms, "rows": 1000}
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    (SCREENSHOTS.parent / "page-1000.json").write_text(json.dumps(report, indent=2) + "\n")
    print(report)
    assert timing["bytes"] < 500_000
    assert timing["load"] < 3000
    assert filter_ms < 300
    assert_clean(browser, server.url)
