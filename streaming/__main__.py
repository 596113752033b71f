"""``python -m streaming``: see streaming.cli."""

from streaming.cli import main

raise SystemExit(main())
