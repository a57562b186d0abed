"""``python -m messaging.client``: run the command line (see :mod:`messaging.client.cli`)."""

from .cli import main

raise SystemExit(main())
