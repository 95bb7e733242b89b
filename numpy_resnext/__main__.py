"""``python -m numpy_resnext`` runs the command line."""

from .cli import main

raise SystemExit(main())
