"""``python -m backpropgrader``: see :mod:`backpropgrader.cli`."""

import sys

from .cli import main

sys.exit(main())
