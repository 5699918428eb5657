"""The HTML pages in a real browser: headless Chromium driven by Selenium.

One browser session for the module; three pages: the 1999 deadlock, a lockdep
prediction and a 100-task scenario. A machine without Debian's ``chromium`` and
``chromium-driver`` skips with one line saying what to install, except under CI
(``VMEMU_REQUIRE_BROWSER`` set by ``.ci/run``, or ``CI``), where that is a failure.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

import vmemu
from vmemu._lockdep.learn import lockdep
from vmemu._viz import lockdep_html, run_html
from vmemu._viz.output import write_text

import _browser
from conftest import ROOT, seed_reaching

EXT2 = ROOT / "scenarios" / "ext2_bitmap_reclaim.yaml"
LOCKDEP = ROOT / "scenarios" / "lockdep" / "ext2_ample_memory.yaml"
HUNDRED = ROOT / "tests" / "data" / "hundred_tasks.yaml"


def _required() -> bool:
    return any(os.environ.get(v, "").lower() not in ("", "0", "false", "no")
               for v in ("VMEMU_REQUIRE_BROWSER", "CI"))


@pytest.fixture(scope="module")
def pages(tmp_path_factory):
    """The three pages on disk, with the results they were made from."""
    problem = _browser.missing()
    if problem is not None:
        if _required():
            pytest.fail(problem + " (required here: CI)", pytrace=False)
        pytest.skip(problem)
    out = tmp_path_factory.mktemp("viz")
    ext2 = vmemu.run(EXT2, seed=seed_reaching(EXT2, "deadlock"))
    hundred = vmemu.run(HUNDRED, seed=0)
    ld = lockdep(LOCKDEP, runs=5, confirm=0)
    files = {"ext2": out / "ext2.html", "hundred": out / "hundred.html",
             "lockdep": out / "lockdep.html"}
    write_text(str(files["ext2"]), run_html(ext2), "page")
    write_text(str(files["hundred"]), run_html(hundred), "page")
    write_text(str(files["lockdep"]), lockdep_html(ld), "page")
    return {"files": files, "ext2": ext2, "hundred": hundred, "lockdep": ld, "dir": out}


@pytest.fixture(scope="module")
def browser(pages):
    with _browser.chromium() as driver:
        yield driver


def _load(browser, path: Path) -> list[dict]:
    """Open a page; the console messages it logged."""
    browser.get_log("browser")             # forget the previous page's
    _browser.open_page(browser, path)
    return browser.get_log("browser")


def _severe(log: list[dict]) -> list[str]:
    return [e["message"] for e in log if e.get("level") == "SEVERE"]


@pytest.mark.parametrize("page", ["ext2", "lockdep", "hundred"])
def test_pages_load_without_console_errors(pages, browser, page):
    log = _load(browser, pages["files"][page])
    assert _severe(log) == []
    assert browser.execute_script("return window.vmemu.ready") is True


@pytest.mark.parametrize("page", ["ext2", "hundred"])
def test_one_lane_per_task(pages, browser, page):
    _load(browser, pages["files"][page])
    want = [t["name"] for t in pages[page].tasks]
    labels = browser.execute_script(
        "return Array.from(document.querySelectorAll('.lane-label[data-task]'))"
        ".map(function (d) { return d.getAttribute('data-task'); })")
    assert labels == want
    assert browser.execute_script("return window.vmemu.lanes()") == want
    if page == "hundred":
        assert len(want) == 101          # 100 scenario tasks and kswapd
        box = browser.find_element("id", "lane-filter")
        box.send_keys("writer1")         # the task filter keeps the matching lanes
        assert browser.execute_script("return window.vmemu.shownLanes()") == \
            [n for n in want if "writer1" in n]
        assert _severe(browser.get_log("browser")) == []


def _cycle_style(browser, svg_id: str) -> tuple[int, str, int]:
    return browser.execute_script(f"""
        var svg = document.getElementById('{svg_id}');
        if (!svg) return [0, '', 0];
        var edges = svg.querySelectorAll('.edge.cycle path');
        return [edges.length, edges.length ? getComputedStyle(edges[0]).stroke : '',
                svg.getBoundingClientRect().width];""")


def test_the_cycle_svg_is_present_and_highlighted(pages, browser):
    _load(browser, pages["files"]["ext2"])
    n, stroke, width = _cycle_style(browser, "waitfor-graph")
    # task -> semaphore superblock -> the same task: two red edges.
    assert n == 2 and stroke == "rgb(198, 40, 40)" and width > 100
    nodes = browser.execute_script(
        "return Array.from(document.querySelectorAll('#waitfor-graph .node.cycle'))"
        ".map(function (g) { return g.getAttribute('data-id'); })")
    assert sorted(nodes) == ["r:semaphore superblock", "t:ext2_new_block"]
    _load(browser, pages["files"]["lockdep"])
    n, stroke, width = _cycle_style(browser, "lockdep-graph")
    assert n == 2 and stroke == "rgb(198, 40, 40)" and width > 100


def test_hovering_a_span_shows_its_event_and_scenario_line(pages, browser):
    from selenium.webdriver.common.action_chains import ActionChains
    _load(browser, pages["files"]["ext2"])
    at = browser.execute_script("return window.vmemu.spanCenter('ext2_new_block', 'blocked')")
    assert at is not None and at["line"] == 26
    canvas = browser.find_element("id", "tl")
    rect = canvas.rect
    ActionChains(browser).move_to_element_with_offset(
        canvas, int(at["x"] - rect["x"] - rect["width"] / 2),
        int(at["y"] - rect["y"] - rect["height"] / 2)).perform()
    tip = browser.find_element("id", "tip")
    assert tip.is_displayed()
    text = tip.text
    assert "ext2_new_block" in text and "blocked: semaphore superblock" in text
    assert "ext2_bitmap_reclaim.yaml:26" in text and "- lock: superblock" in text
    # A click selects the span and shows the scenario line it came from.
    ActionChains(browser).click().perform()
    hit = browser.execute_script("var r = document.querySelector('#source .hit');"
                                 "return r ? r.id : null")
    assert hit == "L26"


def test_screenshots_are_not_blank(pages, browser):
    """The docs' two pictures, made as tests/regen_screenshots.py makes them."""
    shots = _browser.doc_screenshots(browser, pages["files"]["ext2"],
                                     pages["files"]["lockdep"], pages["dir"] / "img")
    running, cycle_red = (0x2e, 0x7d, 0x32), (0xc6, 0x28, 0x28)
    for shot, colour in zip(shots, (running, cycle_red)):
        w, h, colours = _browser.png_colours(browser, shot.read_bytes())
        total = sum(colours.values())
        assert w > 600 and h > 200, shot
        assert max(colours.values()) / total < 0.95, shot   # not one colour all over
        assert len(colours) > 30, shot                      # text, lanes, graph
        assert colours.get(colour, 0) > 10, shot            # lanes drawn / cycle in red


def test_copy_button_works_without_errors(pages, browser):
    _load(browser, pages["files"]["ext2"])
    button = browser.find_element("css selector", "button.copy")
    button.click()
    # The clipboard answers asynchronously: wait for the outcome the page records.
    from selenium.webdriver.support.ui import WebDriverWait
    state = WebDriverWait(browser, 10).until(lambda b: button.get_attribute("data-state"))
    assert state in ("copied", "selected")
    assert _severe(browser.get_log("browser")) == []
