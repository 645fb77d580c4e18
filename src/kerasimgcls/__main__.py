"""Run the command line: ``python -m kerasimgcls``."""

from __future__ import annotations

import sys

from kerasimgcls.cli import main

sys.exit(main())
