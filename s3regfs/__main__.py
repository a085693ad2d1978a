"""``python -m s3regfs`` runs the command-line interface."""

from s3regfs.cli import main

raise SystemExit(main())
