"""Allow ``python -m mmsd``."""

from mmsd.cli import main

raise SystemExit(main())
