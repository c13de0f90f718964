import sys

from resqued.cli import main

sys.exit(main())
