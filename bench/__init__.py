"""Side-by-side speed of the tutorial's raw settings, the `published` profile and the `fast` profile.

`python -m bench --help`; `make bench`. Numbers and the machines they came from: docs/performance.md.
"""
