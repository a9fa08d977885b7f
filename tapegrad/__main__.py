"""``python -m tapegrad demo NAME``."""

import sys

from .cli import main

sys.exit(main())
