#!/usr/bin/env bash
# Build local stand-ins for the two base images, for hosts that cannot pull them (no registry):
#   kit-standin/ubuntu:22.04                                  Ubuntu 22.04 rootfs (debootstrap + docker import)
#   kit-standin/cann:<images.npu.tag>   stand-in for ascendai/cann:<tag>   (dev/standin/cann.Dockerfile)
#   kit-standin/cuda:<images.cuda.tag>  stand-in for nvidia/cuda:<tag>     (dev/standin/cuda.Dockerfile)
# Then `make build-npu BASE_NPU=kit-standin/cann:...` builds the kit's own Dockerfile on it, unchanged.
#
# EVERY way a stand-in differs from the real base (the one list; docs/images.md repeats it):
#   both  - OS: Ubuntu 22.04 "minbase" from archive.ubuntu.com (debootstrap), not Docker Hub's
#           ubuntu:22.04 layer the real bases start from; same release, packages and apt sources
#           (jammy, -updates, -security; main restricted universe multiverse), fewer preinstalled bits.
#         - The host's CA bundle (HOST_CA_BUNDLE) is the trust store and PIP_CERT points at it, so pip
#           in the kit's build trusts a TLS-inspecting proxy as the host does (this machine's egress
#           is one), the way a user behind such a proxy puts their CA into the base they build on;
#           the real bases trust only the public CAs.
#   cann  - NO CANN: /usr/local/Ascend is a FAKE tree written by fake_ascend_root in tests/fakes/ (the
#           doctor's fakes): ascend_toolkit_install.info (version from docker/versions.toml),
#           placeholder libhccl.so/libascendcl.so (4 bytes, not loadable), an opp/ dir, and a
#           set_env.sh exporting what the real one exports (ASCEND_TOOLKIT_HOME, ASCEND_HOME_PATH,
#           ASCEND_OPP_PATH, ASCEND_AICPU_PATH, LD_LIBRARY_PATH, PYTHONPATH, PATH). No op
#           compilers, kernels, nnal, /etc/Ascend; "latest" is a directory, not a symlink.
#           So `import torch_npu` fails in it (the libraries are placeholders): torch_npu against
#           a real CANN, and every NPU op, are NOT proven by the stand-in.
#         - Python: pyenv's CPython 3.10 build of this machine, copied to /usr/local/python3.10 (the
#           real image's path, on PATH the same way) with pip/setuptools only; the real image has
#           its own source build of the latest 3.10.x. libpython is found through ld.so.conf, not
#           through an rpath.
#         - torch on x86_64: the NPU lock names torch 2.1.0+cpu by URL on download.pytorch.org; where
#           that host is out of reach the stand-in brings /opt/kit/docker/locks/npu-x86_64-nodeps-standin.txt
#           (dev/standin/torch_lock.py: the same lock with PyPI's torch 2.1.0 and its nvidia-*-cu12
#           and triton wheels, hash-locked from the CUDA lock) and the kit build selects it with
#           --build-arg NODEPS_LOCK_SUFFIX=-standin: same torch version and API, CUDA libraries the
#           NPU never uses, an image ~3 GB bigger.
#         - The real image's ENTRYPOINT (sources set_env.sh) is kept; the kit's image replaces it anyway.
#         - No HwHiAiUser in the base (the kit's Dockerfile creates it either way).
#   cuda  - NO CUDA: no libcudart/cuBLAS/cuDNN under /usr/local/cuda and no NVIDIA apt repo; only the
#           ENV of nvidia/cuda:12.1.1-runtime (CUDA_VERSION, NVIDIA_*, PATH, LD_LIBRARY_PATH). torch's
#           PyPI wheel brings its own nvidia-*-cu12 libraries, but nothing here runs on a GPU.
#   kit images built on them: the kit's Dockerfiles run as they are (the NPU one with
#           NODEPS_LOCK_SUFFIX=-standin, above); no device exists here (no --gpus, no /dev/davinci*),
#           so every in-container check runs on the CPU.
#
# Usage: dev/standin/build.sh [ubuntu|cann|cuda|all]   (default all; an existing image is kept
#        unless STANDIN_REBUILD=1). Needs root (debootstrap), docker, and Python 3.10 under pyenv.
# Environment: DOCKER (docker), STANDIN_WORK (.cache/standin), UBUNTU_MIRROR, PY310 (python prefix),
#              HOST_CA_BUNDLE (/etc/ssl/certs/ca-certificates.crt).
set -euo pipefail
cd "$(dirname "$0")/../.."
LOCKS=docker/locks   # the hash locks made by make lock
DOCKER=${DOCKER:-docker}
WORK=${STANDIN_WORK:-.cache/standin}
UBUNTU_MIRROR=${UBUNTU_MIRROR:-http://archive.ubuntu.com/ubuntu}
HOST_CA_BUNDLE=${HOST_CA_BUNDLE:-/etc/ssl/certs/ca-certificates.crt}
table() { "${PYTHON:-python3}" -m recipe.tools.versions get "$1"; }
UBUNTU_IMAGE=kit-standin/ubuntu:22.04
CANN_IMAGE=kit-standin/cann:$(table images.npu.tag)
CUDA_IMAGE=kit-standin/cuda:$(table images.cuda.tag)

have() { [ "${STANDIN_REBUILD:-0}" != 1 ] && "$DOCKER" image inspect "$1" >/dev/null 2>&1; }
say() { printf 'standin: %s\n' "$*" >&2; }

build_ubuntu() {
  have "$UBUNTU_IMAGE" && { say "$UBUNTU_IMAGE exists"; return; }
  command -v debootstrap >/dev/null || { say "debootstrap missing (fix: apt-get install -y debootstrap)"; exit 2; }
  local root="$WORK/rootfs-jammy"
  rm -rf "$root" && mkdir -p "$WORK"
  say "debootstrap jammy from $UBUNTU_MIRROR into $root"
  # The libraries pyenv's Python 3.10 links (ssl, ffi, sqlite, readline, ...) come with the rootfs.
  debootstrap --variant=minbase --components=main,universe \
    --include=ca-certificates,libsqlite3-0,libssl3,libffi8,libreadline8,libexpat1,libbz2-1.0,liblzma5,libnsl2 \
    jammy "$root" "$UBUNTU_MIRROR" >"$WORK/debootstrap.log"
  cat >"$root/etc/apt/sources.list" <<SOURCES
deb $UBUNTU_MIRROR jammy main restricted universe multiverse
deb $UBUNTU_MIRROR jammy-updates main restricted universe multiverse
deb $UBUNTU_MIRROR jammy-security main restricted universe multiverse
SOURCES
  cp "$HOST_CA_BUNDLE" "$root/usr/local/share/ca-certificates/host-bundle.crt" 2>/dev/null || true
  cp "$HOST_CA_BUNDLE" "$root/etc/ssl/certs/ca-certificates.crt"
  rm -rf "$root"/var/lib/apt/lists/* "$root"/var/cache/apt/archives/*.deb "$root"/tmp/*
  tar -C "$root" --numeric-owner -c . | "$DOCKER" import \
    --change 'ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin' \
    --change 'ENV PIP_CERT=/etc/ssl/certs/ca-certificates.crt' \
    --change 'CMD ["bash"]' - "$UBUNTU_IMAGE" >/dev/null
  rm -rf "$root"
  say "built $UBUNTU_IMAGE"
}

build_cann() {
  have "$CANN_IMAGE" && { say "$CANN_IMAGE exists"; return; }
  local prefix
  # shellcheck disable=SC2012  # pyenv's version directories have plain names
  prefix="${PY310:-$(ls -d "$(pyenv root 2>/dev/null || echo "$HOME/.pyenv")"/versions/3.10.* 2>/dev/null | sort -V | tail -n 1)}"
  [ -x "$prefix/bin/python3.10" ] || { say "no Python 3.10 (fix: pyenv install 3.10, or PY310=<prefix>)"; exit 2; }
  local ctx="$WORK/cann-context"
  rm -rf "$ctx" && mkdir -p "$ctx"
  # The interpreter and its standard library; of site-packages only pip and setuptools, as a fresh
  # CPython install has (nothing of this machine's own additions).
  cp -a "$prefix/." "$ctx/python3.10/"
  rm -rf "$ctx"/python3.10/lib/python3.10/site-packages/*
  find "$ctx/python3.10" -name __pycache__ -type d -prune -exec rm -rf {} +
  for keep in pip 'pip-*.dist-info' setuptools 'setuptools-*.dist-info' pkg_resources _distutils_hack distutils-precedence.pth; do
    # shellcheck disable=SC2086  # $keep is a glob on purpose
    cp -a "$prefix"/lib/python3.10/site-packages/$keep "$ctx/python3.10/lib/python3.10/site-packages/"
  done
  mkdir -p "$ctx/locks"
  local nodeps
  nodeps="$LOCKS/npu-$(uname -m)-nodeps.txt"
  if [ -f "$nodeps" ] && grep -q '^torch @ ' "$nodeps"; then
    "${PYTHON:-python3}" dev/standin/torch_lock.py "$nodeps" "$LOCKS/cuda-$(uname -m).txt" \
      >"$ctx/locks/npu-$(uname -m)-nodeps-standin.txt"
  fi
  cp tests/fakes/__init__.py "$ctx/fakes.py"
  cp dev/standin/fake_cann.py "$ctx/"
  say "docker build $CANN_IMAGE (Python from $prefix)"
  "$DOCKER" build --network host -f dev/standin/cann.Dockerfile --build-arg UBUNTU_IMAGE="$UBUNTU_IMAGE" \
    --build-arg CANN_VERSION="$(table images.npu.cann)" -t "$CANN_IMAGE" "$ctx"
  rm -rf "$ctx"
}

build_cuda() {
  have "$CUDA_IMAGE" && { say "$CUDA_IMAGE exists"; return; }
  say "docker build $CUDA_IMAGE"
  "$DOCKER" build --network host -f dev/standin/cuda.Dockerfile --build-arg UBUNTU_IMAGE="$UBUNTU_IMAGE" \
    -t "$CUDA_IMAGE" dev/standin
}

case "${1:-all}" in
  ubuntu) build_ubuntu ;;
  cann) build_ubuntu; build_cann ;;
  cuda) build_ubuntu; build_cuda ;;
  all) build_ubuntu; build_cann; build_cuda ;;
  names) printf '%s\n' "$UBUNTU_IMAGE" "$CANN_IMAGE" "$CUDA_IMAGE" ;;
  *) say "usage: $0 [ubuntu|cann|cuda|all|names]"; exit 2 ;;
esac
