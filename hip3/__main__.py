from hip3.cli import main

raise SystemExit(main())
