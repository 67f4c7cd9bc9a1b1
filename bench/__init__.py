"""Side-by-side speed of the tutorial's raw settings and the `published`, `exact` and `fast` profiles,
and per-step loss parity. The device check that runs it on a lent GPU is development machinery:
dev/device_check.py.

`python -m bench --help`; `make bench`. Method, numbers and the machines they came from: docs/performance.md.
"""
