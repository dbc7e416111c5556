"""``python -m pnc``: see :mod:`pnc.cli`."""

import sys

from pnc.cli import main

if __name__ == "__main__":
    sys.exit(main())
