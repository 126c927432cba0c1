"""``python -m gridshift.cli``: the ``gridshift`` command."""

import sys

from gridshift.cli import main

sys.exit(main())
