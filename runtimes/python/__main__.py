"""``python -m runtimes.python``: the same command line as ``python -m runtimes.python.inference``."""

import sys

from .cli import main

sys.exit(main())
