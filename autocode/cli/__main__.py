"""``python -m autocode.cli``."""

import sys

from . import main

sys.exit(main())
