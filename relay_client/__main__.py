"""``python -m relay_client``: run the command line (see :mod:`relay_client.cli`)."""

from .cli import main

raise SystemExit(main())
