"""Re-run every ``$ vmemu ...`` block of the documentation and paste the real output.

Usage (from the repository root, after a change to the report format):
``.venv/bin/python tests/regen_tutorial.py`` (every page: README.md, docs/*.md; or name
pages). Blocks that elide part of the output with a ``[...]`` line keep the same number of
lines before and after the elision. ``tests/test_docs.py`` checks the result.
"""

from __future__ import annotations

import contextlib
import io
import re
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from vmemu._cli import main  # noqa: E402
from vmemu._trace import atomic_write_text  # noqa: E402


def rerun(command: str) -> tuple[list[str], int]:
    # stdout and stderr together, as a terminal shows them (error examples use stderr).
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf), contextlib.redirect_stderr(buf):
        code = main(command[len("$ vmemu "):].split())
    return buf.getvalue().rstrip("\n").split("\n"), code


def regen(block: str) -> str:
    lines = block.split("\n")
    out, code = rerun(lines[0])
    shown = lines[1:-1]
    cut = next((i for i, ln in enumerate(shown) if ln.lstrip().startswith("[...")), None)
    if cut is not None:
        tail = len(shown) - cut - 1
        out = out[:cut] + [shown[cut]] + (out[-tail:] if tail else [])
    return "\n".join([lines[0], *out, f"[exit {code}]"])


def main_(pages: list[str]) -> None:
    for page in pages or ["README.md", *sorted(str(p.relative_to(ROOT))
                                                for p in (ROOT / "docs").glob("*.md"))]:
        path = ROOT / page
        text = path.read_text()
        new = re.sub(r"```\n(\$ vmemu .*?)\n```",
                     lambda m: "```\n" + regen(m.group(1)) + "\n```", text, flags=re.S)
        if new != text:
            atomic_write_text(path, new)
        print(f"{page}: {'regenerated' if new != text else 'unchanged'}")


if __name__ == "__main__":
    import os
    os.chdir(ROOT)
    main_(sys.argv[1:])
