"""Side-by-side speed of the tutorial's raw settings and the `published`, `exact` and `fast` profiles.

`python -m bench --help`; `make bench`. Method and numbers: docs/performance.md.
"""
import sys

from bench.run import main

sys.exit(main())
