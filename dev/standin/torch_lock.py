"""The stand-in's substitute for the NPU x86_64 no-deps lock (a stand-in difference, see build.sh).

The real lock installs torch 2.1.0+cpu by URL from download.pytorch.org (the torch torch_npu's
x86_64 wheel names). Where that host is out of reach, this writes the same lock with that one
entry replaced by PyPI's torch 2.1.0 and its CUDA-12.1 dependencies, taken hash-locked from the
CUDA image's lock: same torch version and API, a bigger image, and still --require-hashes.

    python dev/standin/torch_lock.py docker/locks/npu-x86_64-nodeps.txt docker/locks/cuda-x86_64.txt
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

SUBSTITUTES = re.compile(r"(torch|triton|nvidia-[a-z0-9-]+-cu12)==")


def entries(text: str) -> list[str]:
    """A uv/pip-compile lock split into entries: a requirement line with its hash and comment lines."""
    return [chunk.rstrip("\n") for chunk in re.split(r"\n(?=\S)", text) if chunk.strip()]


def substitute(nodeps: str, cuda: str) -> str:
    kept = [entry for entry in entries(nodeps) if not entry.startswith("torch @ ")]
    if len(kept) == len(entries(nodeps)):
        raise SystemExit("torch_lock: no `torch @ URL` entry in the no-deps lock: nothing to substitute")
    kept = [entry for entry in kept if not entry.startswith("# torch 2.1.0+cpu")]
    torch = [entry.split("\n    # via")[0] for entry in entries(cuda) if SUBSTITUTES.match(entry)]
    if not any(entry.startswith("torch==") for entry in torch):
        raise SystemExit("torch_lock: no torch== entry in the CUDA lock")
    header = "# Stand-in substitute (dev/standin/torch_lock.py): PyPI torch + CUDA deps for torch 2.1.0+cpu"
    return "\n".join([header, *kept, *torch]) + "\n"


if __name__ == "__main__":
    sys.stdout.write(substitute(Path(sys.argv[1]).read_text(), Path(sys.argv[2]).read_text()))
