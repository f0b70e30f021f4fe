"""``python -m dnerv_codec`` runs the CLI (also what ``torchrun -m dnerv_codec`` starts)."""

import sys

from dnerv_codec.cli import main

sys.exit(main())
