"""``python -m resqued.spawner``: how the master starts its spawner (main.py)."""

import sys

from resqued.spawner.main import main

sys.exit(main(sys.argv[1:]))
