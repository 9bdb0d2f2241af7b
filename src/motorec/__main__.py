"""`python -m motorec ...` (what `torchrun -m motorec` runs on every rank): the `motorec` command line."""

import sys

from motorec.cli import main

sys.exit(main())
