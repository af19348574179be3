from router_service.cli import main

raise SystemExit(main())
