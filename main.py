#!/usr/bin/env python3
"""twin: a digital twin of an AI computing center. See README.md, or run `python main.py --help`."""

import sys

from twin.cli import main

if __name__ == "__main__":
    sys.exit(main())
