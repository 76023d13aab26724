"""``python -m lightning_attn.sweep``: one sweep worker (the launcher starts these; see :mod:`.worker`)."""

import sys

from .worker import main

sys.exit(main())
