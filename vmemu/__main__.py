"""``python -m vmemu``."""

import sys

from ._cli import main

sys.exit(main())
