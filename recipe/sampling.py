"""A background thread that takes a reading every few seconds while training runs (device memory,
energy): `with Sampler(...):` around trainer.train()."""

from __future__ import annotations

import threading


class BackgroundSampler:
    """Calls `sample()` on entry, every `interval_s` in a daemon thread, and on exit, then `close()`.
    `active=False` (nothing to read on this device) makes it a no-op."""

    def __init__(self, interval_s: float, name: str, active: bool = True):
        self.interval_s, self.active = interval_s, active
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True, name=name)

    def sample(self) -> None:
        raise NotImplementedError

    def close(self) -> None:
        """Release the source after the last reading."""

    def __enter__(self):
        if self.active:
            self.sample()
            self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=30)
        if self.active:
            self.sample()
            self.close()

    def _loop(self):
        while not self._stop.wait(self.interval_s):
            self.sample()
