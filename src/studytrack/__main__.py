"""`python -m studytrack`: the `studytrack` command."""

import sys

from studytrack.cli import main

sys.exit(main())
