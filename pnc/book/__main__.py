"""``python -m pnc.book``: the book's experiments (see :mod:`pnc.book.cli`)."""

import sys

from pnc.book.cli import main

sys.exit(main())
