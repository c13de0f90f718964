import sys

from resqued.fleet.advertiser import main

sys.exit(main())
