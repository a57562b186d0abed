"""``python -m localservers``: see :mod:`localservers.dev`."""

import sys

from .dev import main

sys.exit(main())
