"""Re-make the screenshots of docs/visualizing.md from vmemu's current output.

Usage (from the repository root, which it must be run from, with Debian's chromium and chromium-driver installed):
``.venv/bin/python tests/regen_screenshots.py``. It writes the two pages the docs show
(``vmemu run scenarios/ext2_bitmap_reclaim.yaml --seed 1 --html`` and ``vmemu lockdep
scenarios/lockdep/ext2_ample_memory.yaml --html``) and photographs them with
:func:`_browser.doc_screenshots`, the code the browser test checks the pictures with.
"""

from __future__ import annotations

import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

import _browser  # noqa: E402

from vmemu._cli import main  # noqa: E402


def make_pages(folder: Path) -> tuple[Path, Path]:
    """The two pages, made by the commands docs/visualizing.md shows."""
    run, ld = folder / "ext2.html", folder / "lockdep.html"
    main(["run", "scenarios/ext2_bitmap_reclaim.yaml", "--seed", "1", "--html", str(run),
          "--json"])
    # (Its confirmed finding goes where a user's would: .vmemu/findings, ignored by git.)
    main(["lockdep", "scenarios/lockdep/ext2_ample_memory.yaml", "--html", str(ld), "--json"])
    return run, ld


if __name__ == "__main__":
    problem = _browser.missing()
    if problem:
        sys.exit(problem)
    with tempfile.TemporaryDirectory() as tmp:
        import contextlib
        import io
        with contextlib.redirect_stdout(io.StringIO()):
            pages = make_pages(Path(tmp))
        with _browser.chromium() as driver:
            for p in _browser.doc_screenshots(driver, *pages, ROOT / "docs" / "img"):
                print(f"wrote {p.relative_to(ROOT)}")
