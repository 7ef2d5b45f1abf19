"""`python -m semia` runs the command line."""

import sys

from semia.cli import main

sys.exit(main())
