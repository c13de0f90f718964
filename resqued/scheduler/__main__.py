import sys

from resqued.scheduler.main import main

sys.exit(main())
