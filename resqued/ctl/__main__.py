from resqued.ctl.cli import main

raise SystemExit(main())
