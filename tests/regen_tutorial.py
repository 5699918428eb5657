"""Re-run every ``$ vmemu ...`` block of docs/tutorial.md and paste the real output.

Usage (from the repository root, after a change to the report format):
``.venv/bin/python tests/regen_tutorial.py``. Blocks that elide part of the output with a
``[...]`` line keep the same number of lines before and after the elision. The test
``test_tutorial_commands_still_give_the_output_shown`` checks the result.
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
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
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


def main_() -> None:
    path = ROOT / "docs" / "tutorial.md"
    text = path.read_text()
    new = re.sub(r"```\n(\$ vmemu .*?)\n```", lambda m: "```\n" + regen(m.group(1)) + "\n```",
                 text, flags=re.S)
    atomic_write_text(path, new)
    print("docs/tutorial.md: regenerated" if new != text else "docs/tutorial.md: unchanged")


if __name__ == "__main__":
    import os
    os.chdir(ROOT)
    main_()
