import sys

from studytrack.cli import main

sys.exit(main())
