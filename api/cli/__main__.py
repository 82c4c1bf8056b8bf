"""`python -m api.cli`, the same as `phr`."""

import sys

from api.cli.main import main

sys.exit(main())
