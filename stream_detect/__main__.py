"""``python -m stream_detect`` runs the command line."""

import sys

from stream_detect.cli import main

sys.exit(main())
