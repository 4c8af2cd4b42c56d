import sys

from gitmodel.cli import main

sys.exit(main())
