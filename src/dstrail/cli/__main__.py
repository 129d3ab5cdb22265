"""``python -m dstrail.cli``: the same as the ``dstrail`` command."""

import sys

from dstrail.cli import main

sys.exit(main())
