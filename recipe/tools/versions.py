"""Read the kit's ONE version table (docker/versions.toml) and the hash locks derived from it.

Shipped in the images (Python 3.10, where tomllib does not exist yet: tomli is pinned for it),
so the verify suite and the doctor read the same compatibility rows and pins as the build. It lives
in recipe/ because recipe/ is the package every image installs; docker/lock.py and the stand-in
build use it from the checkout.

    python -m recipe.tools.versions get images.npu.tag      # one value, for scripts (dev/standin/build.sh)

docker/run.sh reads the build arguments and image tags from docker/versions.sh, which `make lock`
writes from build_args() and image_tag() (docker/lock.py): a host needs no Python to build.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from urllib.parse import unquote

from recipe.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised by the pinned Python 3.10 env
    try:
        import tomli as tomllib
    except ImportError:  # a bare Python 3.10 host reading the table for `make build-*`
        tomllib = None

ENV_TABLE = "KIT_VERSIONS_TOML"
IMAGES = ("npu", "cuda")
# In a checkout and in the images alike: <root>/recipe/tools/versions.py below <root>/docker/.
DOCKER_DIR = Path(__file__).resolve().parents[2] / "docker"
LOCK_DIR = DOCKER_DIR / "locks"

_LOCK_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s;\\]+)")
# A wheel pinned by URL (`torch @ https://.../torch-2.1.0%2Bcpu-cp310-...whl`): version from the file name.
_URL_LINE = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)\s*@\s*\S*/[^/\s]+?-([^-/\s]+)-[^/\s]*\.whl")


def normalize(name: str) -> str:
    """PEP 503 name: 'Torch_NPU' and 'torch-npu' are the same distribution."""
    return re.sub(r"[-_.]+", "-", name).lower()


def table_path(path: str | os.PathLike | None = None) -> Path:
    if path is not None:
        return Path(path)
    return Path(os.environ.get(ENV_TABLE) or DOCKER_DIR / "versions.toml")


def load_table(path: str | os.PathLike | None = None) -> dict:
    """The parsed table; default docker/versions.toml, or $KIT_VERSIONS_TOML."""
    source = table_path(path)
    if tomllib is None:
        raise ConfigError(f"Python {sys.version.split()[0]} cannot read {source}: no TOML parser",
                          fix="pip install tomli==2.0.2 (or use Python >= 3.11, e.g. `make venv`)")
    try:
        with open(source, "rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        raise ConfigError(
            f"version table {source} not found",
            fix=f"run from a kit checkout or image (/opt/kit/docker/versions.toml), or set {ENV_TABLE}",
        ) from None
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"version table {source} is not valid TOML: {exc}",
                          fix="fix the file, then run `make lock`") from None


def compat_rows(table: dict | None = None) -> list[dict]:
    """The CANN / torch / torch_npu / HDK rows, as written in the table."""
    table = load_table() if table is None else table
    return [dict(row) for row in table.get("compat", [])]


def _image(table: dict, image: str) -> dict:
    if image not in IMAGES:
        raise ConfigError(f"unknown image {image!r}", fix=f"use one of: {', '.join(IMAGES)}")
    try:
        return table["images"][image]
    except KeyError:
        raise ConfigError(f"version table has no [images.{image}] section",
                          fix="restore it from git (docker/versions.toml)") from None


def image_pins(image: str, table: dict | None = None) -> dict[str, str]:
    """Every exact pin of one image: the shared [pins] plus its device layer."""
    table = load_table() if table is None else table
    pins = {normalize(name): str(version) for name, version in table.get("pins", {}).items()}
    device = _image(table, image).get("pins", {})
    pins.update({normalize(name): str(version) for name, version in device.items()})
    return dict(sorted(pins.items()))


def image_arches(image: str, table: dict | None = None) -> list[str]:
    table = load_table() if table is None else table
    return list(_image(table, image).get("arches", []))


def no_deps_packages(image: str, arch: str, table: dict | None = None) -> list[str]:
    """Pins locked and installed apart, with --no-deps (their metadata cannot resolve on PyPI)."""
    table = load_table() if table is None else table
    return [normalize(n) for n in _image(table, image).get("no_deps", {}).get(arch, [])]


def lock_path(image: str, arch: str, no_deps: bool = False) -> Path:
    suffix = "-nodeps" if no_deps else ""
    return LOCK_DIR / f"{image}-{arch}{suffix}.txt"


def parse_lock(path: str | os.PathLike) -> dict[str, str]:
    """name -> version from a `uv pip compile --generate-hashes` lock (hash lines skipped)."""
    versions = {}
    for line in Path(path).read_text().splitlines():
        match = _LOCK_LINE.match(line)
        if match:
            versions[normalize(match.group(1))] = match.group(2)
        elif match := _URL_LINE.match(line):
            versions[normalize(match.group(1))] = unquote(match.group(2))
    return versions


def url_wheels(image: str, arch: str, table: dict | None = None) -> dict[str, dict]:
    """Wheels installed by URL + sha256 on one arch (torch 2.1.0+cpu under torch-npu on x86_64)."""
    table = load_table() if table is None else table
    wheels = _image(table, image).get("wheels", {}).get(arch, {})
    return {normalize(name): dict(spec) for name, spec in wheels.items()}


def mirrors(image: str, table: dict | None = None) -> dict[str, dict]:
    """registry name -> {"repository": ..., "digest": ...} for the image's base."""
    return {name: dict(spec) for name, spec in _image(load_table() if table is None else table, image)
            .get("mirrors", {}).items()}


def base_image(image: str, table: dict | None = None, registry: str | None = None) -> str:
    """repository:tag on one registry (default: the image's `registry`), with @digest when pinned."""
    table = load_table() if table is None else table
    section = _image(table, image)
    registry = registry or section["registry"]
    known = mirrors(image, table)
    if registry not in known:
        raise ConfigError(f"registry {registry!r} is not a mirror of the {image} base image",
                          fix=f"use one of: {', '.join(known)} (docker/versions.toml [images.{image}.mirrors])")
    reference = f"{known[registry]['repository']}:{section['tag']}"
    digest = known[registry].get("digest")
    return f"{reference}@{digest}" if digest else reference


def build_args(image: str, table: dict | None = None) -> dict[str, str]:
    """The ARG values docker/<image>/Dockerfile declares (base image, versions for labels)."""
    table = load_table() if table is None else table
    section = _image(table, image)
    pins = image_pins(image, table)
    args = {
        "BASE_IMAGE": base_image(image, table),
        "PYTHON_VERSION": str(table["python"]["version"]),
        "TORCH_VERSION": pins["torch"],
        "TRANSFORMERS_VERSION": pins["transformers"],
        "OPENMIND_VERSION": pins["openmind"],
    }
    if image == "npu":
        args.update(CANN_VERSION=section["cann"], TORCH_NPU_VERSION=pins["torch-npu"])
    else:
        args["CUDA_VERSION"] = section["cuda"]
    return args


def image_tag(image: str, table: dict | None = None) -> str:
    """Local tag naming what matters: cola-repro-kit/npu:cann8.0.RC3-torch2.1.0-py3.10."""
    table = load_table() if table is None else table
    section = _image(table, image)
    stack = f"cann{section['cann']}" if image == "npu" else f"cuda{section['cuda']}"
    return f"cola-repro-kit/{image}:{stack}-torch{image_pins(image, table)['torch']}-py{table['python']['version']}"


def _lookup(table: dict, dotted: str):
    value = table
    for key in dotted.split("."):
        if not isinstance(value, dict) or key not in value:
            raise ConfigError(f"{table_path()} has no key {dotted!r}", fix="see docker/versions.toml")
        value = value[key]
    return value


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    try:
        if len(argv) == 2 and argv[0] == "get":
            print(_lookup(load_table(), argv[1]))
        else:
            print("usage: python -m recipe.tools.versions get KEY", file=sys.stderr)
            return 2
    except ConfigError as exc:
        print(exc.render(), file=sys.stderr)
        return exc.exit_code
    return 0


if __name__ == "__main__":
    sys.exit(main())
