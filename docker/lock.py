"""Generate docker/locks/*.in from docker/versions.toml and resolve them into hash locks with uv.

    python docker/lock.py            # `make lock`: rewrite the .in files, then uv pip compile each
    python docker/lock.py --check    # exit 1 when a committed .in no longer matches the table

One lock per image and architecture, resolved from PyPI for Python [python].version:
    npu-aarch64.txt, npu-x86_64.txt, cuda-x86_64.txt
A package listed in [images.<image>].no_deps.<arch> is left out of that lock and locked alone
in <image>-<arch>-nodeps.txt, installed with `pip install --no-deps` after the main lock:
torch-npu's x86_64 wheel declares torch==2.1.0+cpu, a build only the PyTorch CPU index serves,
so no resolver can satisfy it from PyPI; the main lock carries PyPI's torch==2.1.0 instead.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: `docker` must not become a package (PyPI's docker)

from recipe import versions

HEADER = (
    "# GENERATED from docker/versions.toml by docker/lock.py -- do not edit; run `make lock`.\n"
    "# Input of `uv pip compile --generate-hashes` for {image} on linux {arch}, Python {python}.\n"
)


def lock_inputs(table: dict) -> dict[str, str]:
    """File name -> content of every .in the table implies (the staleness test compares these)."""
    inputs = {}
    python = table["python"]["version"]
    for image in versions.IMAGES:
        pins = versions.image_pins(image, table)
        for arch in versions.image_arches(image, table):
            apart = versions.no_deps_packages(image, arch, table)
            header = HEADER.format(image=image, arch=arch, python=python)
            main = [f"{name}=={pins[name]}" for name in pins if name not in apart]
            inputs[versions.lock_path(image, arch).with_suffix(".in").name] = header + "\n".join(main) + "\n"
            if apart:
                alone = [f"{name}=={pins[name]}" for name in apart]
                name = versions.lock_path(image, arch, no_deps=True).with_suffix(".in").name
                inputs[name] = header.replace("Input of", "--no-deps input of") + "\n".join(alone) + "\n"
    return inputs


def uv_command(table: dict, source: Path, output: Path, arch: str, no_deps: bool,
               constraints: Path | None = None) -> list[str]:
    uv = shutil.which("uv") or str(Path(sys.executable).with_name("uv"))
    command = [
        uv, "pip", "compile", str(source.relative_to(ROOT)),
        "--generate-hashes", "--python-version", str(table["python"]["version"]),
        "--python-platform", f"{arch}-unknown-linux-gnu",
        "--index-url", table["lock"]["index"],
        "--custom-compile-command", "make lock",
        "--output-file", str(output.relative_to(ROOT)),
        "--quiet",
    ]
    if constraints is not None:
        command += ["--constraint", str(constraints)]
    return command + (["--no-deps"] if no_deps else [])


def write_and_compile(table: dict) -> None:
    """The first lock (npu-aarch64) is the anchor: every later one is resolved under its versions
    as constraints, so a package the images share has one version everywhere, transitive or not."""
    versions.LOCK_DIR.mkdir(parents=True, exist_ok=True)
    # A fixed relative path, because uv writes it into the locks' "via -c ..." comments.
    anchor = versions.LOCK_DIR / ".anchor-constraints.txt"
    constraints = None
    try:
        for name, content in lock_inputs(table).items():
            source = versions.LOCK_DIR / name
            source.write_text(content)
            stem = name.removesuffix(".in")
            arch = stem.split("-")[1]
            no_deps = stem.endswith("-nodeps")
            output = source.with_suffix(".txt")
            print(f"lock: {output.relative_to(ROOT)}", flush=True)
            subprocess.run(uv_command(table, source, output, arch, no_deps, constraints), cwd=ROOT, check=True)
            if constraints is None:
                anchor.write_text("".join(f"{n}=={v}\n" for n, v in versions.parse_lock(output).items()))
                constraints = anchor.relative_to(ROOT)
    finally:
        anchor.unlink(missing_ok=True)


def stale_inputs(table: dict) -> list[str]:
    """Names of .in files that are missing, differ from the table, or are no longer generated."""
    expected = lock_inputs(table)
    stale = [name for name, content in expected.items()
             if not (versions.LOCK_DIR / name).is_file() or (versions.LOCK_DIR / name).read_text() != content]
    extra = [p.name for p in versions.LOCK_DIR.glob("*.in") if p.name not in expected]
    return sorted(stale + extra)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report .in files the table made stale")
    args = parser.parse_args(argv)
    table = versions.load_table()
    if args.check:
        stale = stale_inputs(table)
        for name in stale:
            print(f"stale: docker/locks/{name} does not match docker/versions.toml; run `make lock`")
        return 1 if stale else 0
    write_and_compile(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
