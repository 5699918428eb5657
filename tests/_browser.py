"""Headless Chromium for the HTML tests and the docs' screenshots, via Selenium.

Debian's ``chromium`` and ``chromium-driver`` packages only: no browser is downloaded
(Selenium Manager is never asked: the driver's path is given). ``.ci/run`` installs the
two packages; :func:`missing` says in one line what is absent on a machine without them.
"""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

CHROMIUM = os.environ.get("VMEMU_CHROMIUM", "/usr/bin/chromium")
CHROMEDRIVER = os.environ.get("VMEMU_CHROMEDRIVER", "/usr/bin/chromedriver")
#: The fix named when something is missing.
INSTALL = "apt-get install chromium chromium-driver (and pip install -e '.[test]' for selenium)"


def missing() -> str | None:
    """None when the browser test can run here; else one line saying what is missing."""
    gone = [p for p in (CHROMIUM, CHROMEDRIVER) if not (os.path.isfile(p) and os.access(p, os.X_OK))]
    try:
        import selenium  # noqa: F401
    except ImportError:
        gone.append("the selenium package")
    if gone:
        return f"browser test needs {', '.join(gone)}: {INSTALL}"
    return None


@contextlib.contextmanager
def chromium(width: int = 1400, height: int = 1000) -> Iterator[object]:
    """A fresh headless Chromium (own profile, no network services), as a WebDriver."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    profile = tempfile.mkdtemp(prefix="vmemu-chromium-")
    opts = webdriver.ChromeOptions()
    opts.binary_location = CHROMIUM
    for a in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-background-networking", "--disable-component-update",
              "--disable-sync", "--no-first-run", "--no-default-browser-check",
              "--disable-extensions", "--hide-scrollbars", "--force-device-scale-factor=1",
              "--font-render-hinting=none", f"--window-size={width},{height}",
              f"--user-data-dir={profile}"):
        opts.add_argument(a)
    opts.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    driver = webdriver.Chrome(service=Service(executable_path=CHROMEDRIVER), options=opts)
    try:
        yield driver
    finally:
        try:
            driver.quit()
        finally:
            shutil.rmtree(profile, ignore_errors=True)


def open_page(driver: object, path: str | os.PathLike) -> None:
    """Load a file and wait until its script says it is drawn."""
    from selenium.webdriver.support.ui import WebDriverWait
    driver.get(Path(path).resolve().as_uri())  # type: ignore[attr-defined]
    WebDriverWait(driver, 20).until(
        lambda d: d.execute_script("return !!(window.vmemu && window.vmemu.ready)"))


def screenshot(driver: object, path: str | os.PathLike, element: object = None) -> bytes:
    """Save a PNG of the page (or of one element); returns its bytes."""
    if element is not None:
        png = element.screenshot_as_png  # type: ignore[attr-defined]
    else:
        png = base64.b64decode(driver.get_screenshot_as_base64())  # type: ignore[attr-defined]
    Path(path).write_bytes(png)
    return png


def png_colours(driver: object, png: bytes) -> tuple[int, int, dict[tuple[int, ...], int]]:
    """Width, height and a pixel count per colour (every 4th pixel) of a PNG, decoded by
    the browser's own image decoder (faster than Python, and no image library needed)."""
    w, h, flat = driver.execute_async_script("""
        var done = arguments[arguments.length - 1], img = new Image();
        img.onload = function () {
          var c = document.createElement('canvas'); c.width = img.width; c.height = img.height;
          var x = c.getContext('2d'); x.drawImage(img, 0, 0);
          var d = x.getImageData(0, 0, c.width, c.height).data, m = {};
          for (var i = 0; i < d.length; i += 16) {
            var k = (d[i] << 16) | (d[i + 1] << 8) | d[i + 2]; m[k] = (m[k] || 0) + 1;
          }
          var out = []; for (var k2 in m) out.push(+k2, m[k2]);
          done([img.width, img.height, out]);
        };
        img.onerror = function () { done([0, 0, []]); };
        img.src = 'data:image/png;base64,' + arguments[0];""",
        base64.b64encode(png).decode())  # type: ignore[attr-defined]
    counts = {((k >> 16) & 255, (k >> 8) & 255, k & 255): n
              for k, n in zip(flat[::2], flat[1::2])}
    return w, h, counts


#: The docs' screenshots (docs/visualizing.md shows them).
DOC_TIMELINE = "timeline-ext2.png"
DOC_LOCKDEP = "lockdep-graph.png"


def doc_screenshots(driver: object, run_page: Path, lockdep_page: Path, out: Path) -> list[Path]:
    """The two pictures of docs/visualizing.md, from the pages as vmemu wrote them: the
    1999 deadlock's header and timeline with the blocked span hovered, and the lockdep
    dependency graph. ``tests/regen_screenshots.py`` writes them into docs/img; the
    browser test makes them the same way and checks them."""
    from selenium.webdriver.common.action_chains import ActionChains
    out.mkdir(parents=True, exist_ok=True)
    was = driver.get_window_size()  # type: ignore[attr-defined]
    driver.set_window_size(1100, 900)  # type: ignore[attr-defined]
    open_page(driver, run_page)
    # Crop to header + timeline: the window ends just below the timeline.
    bottom = driver.execute_script(  # type: ignore[attr-defined]
        "return document.getElementById('timeline-section').getBoundingClientRect().bottom")
    inner = driver.execute_script("return window.innerHeight")  # type: ignore[attr-defined]
    driver.set_window_size(1100, 900 - inner + int(bottom) + 8)  # type: ignore[attr-defined]
    driver.execute_script("window.vmemu.fit()")  # type: ignore[attr-defined]
    at = driver.execute_script(  # type: ignore[attr-defined]
        "return window.vmemu.spanCenter('ext2_new_block', 'blocked')")
    canvas = driver.find_element("id", "tl")  # type: ignore[attr-defined]
    r = canvas.rect
    ActionChains(driver).move_to_element_with_offset(
        canvas, int(at["x"] - r["x"] - r["width"] / 2),
        int(at["y"] - r["y"] - r["height"] / 2)).perform()
    shots = [out / DOC_TIMELINE, out / DOC_LOCKDEP]
    screenshot(driver, shots[0])
    driver.set_window_size(1100, 900)  # type: ignore[attr-defined]
    open_page(driver, lockdep_page)
    screenshot(driver, shots[1], driver.find_element("id", "graph"))  # type: ignore[attr-defined]
    driver.set_window_size(was["width"], was["height"])  # type: ignore[attr-defined]
    return shots
