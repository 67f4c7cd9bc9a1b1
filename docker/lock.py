"""Generate docker/locks/*.in and docker/versions.sh from docker/versions.toml; resolve the hash locks with uv.

    python docker/lock.py                # `make lock`: rewrite the .in files + versions.sh, uv pip compile each
    python docker/lock.py --check        # exit 1 when a committed .in or versions.sh no longer matches the table
    python docker/lock.py --pin-digests  # `make pin-digests`: ask the registries for each mirror's digest

One lock per image and architecture, resolved from PyPI for Python [python].version:
    npu-aarch64.txt, npu-x86_64.txt, cuda-x86_64.txt
A package listed in [images.<image>].no_deps.<arch> is left out of that lock and locked alone
in <image>-<arch>-nodeps.txt, installed with `pip install --no-deps` after the main lock:
torch-npu's x86_64 wheel declares torch==2.1.0+cpu, a build only the PyTorch CPU index serves,
so no resolver can satisfy it from PyPI. That torch is the wheel [images.<image>.wheels.<arch>]
names by URL and sha256 (Ascend's documented install): it is written into the -nodeps lock as
given, and the main lock keeps PyPI torch's dependencies but not torch and not its `drop` list.

docker/versions.sh is the table as bash variables: docker/run.sh sources it, so the host needs
bash, make and docker, and no Python, to build and run the images.
"""

from __future__ import annotations

import argparse
import fnmatch
import json
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # run as a script: `docker` must not become a package (PyPI's docker)

from recipe.tools import versions

SHELL_TABLE = ROOT / "docker" / "versions.sh"
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
               constraints: Path | None = None, no_emit: list[str] = ()) -> list[str]:
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
    for name in no_emit:
        command += ["--no-emit-package", name]
    return command + (["--no-deps"] if no_deps else [])


def url_wheel_block(name: str, spec: dict) -> str:
    """A pip requirement by URL with its hash, as Ascend documents the wheel (pip --require-hashes)."""
    return (f"# {name} {spec['version']}: docker/versions.toml [wheels] (Ascend's documented wheel), not resolved\n"
            f"{name} @ {spec['url']} \\\n    --hash=sha256:{spec['sha256']}\n")


def dropped(lock: Path, wheels: dict[str, dict]) -> list[str]:
    """Names the main lock must not emit: each URL wheel, and the dependencies only PyPI's build has."""
    names = set(versions.parse_lock(lock))
    drop = set(wheels)
    for spec in wheels.values():
        drop |= {n for n in names for pattern in spec.get("drop", []) if fnmatch.fnmatch(n, pattern)}
    return sorted(drop & names | set(wheels))


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
            wheels = versions.url_wheels(stem.split("-")[0], arch, table)
            if wheels and no_deps:
                with output.open("a") as handle:
                    handle.write("".join(url_wheel_block(n, s) for n, s in wheels.items()))
            elif wheels:  # resolve again, leaving the URL wheels and their CUDA-only deps out
                no_emit = dropped(output, wheels)
                subprocess.run(uv_command(table, source, output, arch, no_deps, constraints, no_emit),
                               cwd=ROOT, check=True)
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


def _shell_name(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]", "_", text)


def shell_table(table: dict) -> str:
    """docker/versions.sh: what docker/run.sh needs from the table, as bash variables."""
    lines = [
        "# GENERATED from docker/versions.toml by docker/lock.py -- do not edit; run `make lock`.",
        "# Sourced by docker/run.sh: building and running the images needs bash, make and docker only.",
        "# shellcheck shell=bash disable=SC2034",
    ]
    for image in versions.IMAGES:
        prefix = image.upper()
        args = versions.build_args(image, table)
        args.pop("BASE_IMAGE")
        lines.append(f"{prefix}_IMAGE='{versions.image_tag(image, table)}'")
        lines.append(f"{prefix}_REGISTRY='{table['images'][image]['registry']}'")
        lines.append(f"{prefix}_MIRRORS='{' '.join(versions.mirrors(image, table))}'")
        for registry in versions.mirrors(image, table):
            lines.append(f"{prefix}_BASE_{_shell_name(registry)}='{versions.base_image(image, table, registry)}'")
        lines.append(f"{prefix}_BUILD_ARGS='{' '.join(f'{k}={v}' for k, v in args.items())}'")
    for text in lines:
        if "'" in text.partition("=")[2].strip("'"):
            raise ValueError(f"a table value with a quote cannot go into versions.sh: {text}")
    return "\n".join(lines) + "\n"


def write_shell_table(table: dict) -> None:
    SHELL_TABLE.write_text(shell_table(table))
    print(f"wrote {SHELL_TABLE}")


# --------------------------------------------------------------------------- make pin-digests
DIGEST = re.compile(r"^sha256:[0-9a-f]{64}$")


def registry_digest(reference: str) -> tuple[str | None, str]:
    """The digest a registry serves for reference (the manifest list of a multi-arch image)."""
    docker = os.environ.get("DOCKER", "docker")
    try:
        done = subprocess.run([docker, "buildx", "imagetools", "inspect", reference, "--format", "{{json .Manifest}}"],
                              capture_output=True, text=True, timeout=120, check=False)
    except (OSError, subprocess.TimeoutExpired) as err:
        return None, str(err)
    if done.returncode != 0:
        return None, (done.stderr.strip().splitlines() or ["docker buildx imagetools inspect failed"])[-1]
    try:
        digest = json.loads(done.stdout)["digest"]
    except (ValueError, KeyError, TypeError):
        return None, "no digest in the answer of docker buildx imagetools inspect"
    return (digest, "") if DIGEST.match(digest) else (None, f"not a sha256 digest: {digest!r}")


def pin_digests(path: Path) -> int:
    """Write each mirror's digest into the table (one line each); a registry that does not answer
    keeps its empty digest: a digest is only ever what the registry said."""
    text = path.read_text()
    table = versions.load_table(path)
    failed = 0
    for image in versions.IMAGES:
        tag = table["images"][image]["tag"]
        for registry, spec in versions.mirrors(image, table).items():
            digest, why = registry_digest(f"{spec['repository']}:{tag}")
            if digest is None:
                failed += 1
                print(f"{image} {registry}: {spec['repository']}:{tag}: {why}; digest left as it was")
                continue
            line = re.compile(rf'^(\s*"{re.escape(registry)}"\s*=\s*\{{\s*repository\s*=\s*"{re.escape(spec["repository"])}"'
                              rf'\s*,\s*digest\s*=\s*)"[^"]*"', re.MULTILINE)
            text, count = line.subn(rf'\g<1>"{digest}"', text)
            if count != 1:
                raise SystemExit(f"{path}: cannot find the line of mirror {registry!r} of {image}; edit it by hand")
            print(f"{image} {registry}: {digest}")
    path.write_text(text)
    write_shell_table(versions.load_table(path))
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report files the table made stale")
    parser.add_argument("--pin-digests", action="store_true", help="fill each mirror's digest from its registry")
    args = parser.parse_args(argv)
    table = versions.load_table()
    if args.pin_digests:
        return pin_digests(versions.table_path())
    if args.check:
        stale = [f"docker/locks/{name}" for name in stale_inputs(table)]
        if not SHELL_TABLE.is_file() or SHELL_TABLE.read_text() != shell_table(table):
            stale.append("docker/versions.sh")
        for name in stale:
            print(f"stale: {name} does not match docker/versions.toml; run `make lock`")
        return 1 if stale else 0
    write_shell_table(table)
    write_and_compile(table)
    return 0


if __name__ == "__main__":
    sys.exit(main())
