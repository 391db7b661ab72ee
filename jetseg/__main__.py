import sys

from jetseg.cli import main

sys.exit(main())
