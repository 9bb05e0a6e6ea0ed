"""``python -m backpropbook.grader``: see :mod:`backpropbook.grader.cli`."""

import sys

from .cli import main

sys.exit(main())
