import sys

from gradeset.cli import main

sys.exit(main())
