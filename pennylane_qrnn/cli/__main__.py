"""``python -m pennylane_qrnn.cli``: the ``qrnn`` command line."""

import sys

from . import main

sys.exit(main())
