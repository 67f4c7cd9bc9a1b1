"""Side-by-side speed of the tutorial's raw settings and the `published`, `exact` and `fast` profiles,
per-step loss parity, and the device check (bench/device_check.py).

`python -m bench --help`; `make bench`; `make device-check`. Method and numbers: docs/performance.md.
"""
