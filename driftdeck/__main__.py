import sys

from driftdeck.cli import main

sys.exit(main())
