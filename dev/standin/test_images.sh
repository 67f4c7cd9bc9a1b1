#!/usr/bin/env bash
# `make test-images`: build both kit images on local stand-in bases and run them (tests/test_images.py).
#   1. a Docker engine: the running one, else `dockerd` started here (and stopped again at exit,
#      by its PID; an engine that was already running is left alone);
#   2. the stand-in bases (dev/standin/build.sh; its header lists how they differ from the real ones);
#   3. both kit images with the kit's own targets, `make build-npu` / `make build-a100`, BuildKit,
#      host networking, BASE_IMAGE pointing at the stand-ins, tagged cola-repro-kit/{npu,cuda}:standin;
#   4. the in-container checks (pytest tests/test_images.py), then the image sizes.
# Build seconds are printed per step ("timing:" lines); run it twice to see a warm build.
set -euo pipefail
cd "$(dirname "$0")/../.."
LOCKS=docker/locks   # the hash locks made by make lock
WORK=${STANDIN_WORK:-.cache/standin}
mkdir -p "$WORK"
PY=${PY:-.venv/bin/python}
export KIT_STANDIN_NPU_IMAGE=${KIT_STANDIN_NPU_IMAGE:-cola-repro-kit/npu:standin}
export KIT_STANDIN_CUDA_IMAGE=${KIT_STANDIN_CUDA_IMAGE:-cola-repro-kit/cuda:standin}
say() { printf 'test-images: %s\n' "$*" >&2; }
timed() { local label=$1 start; shift; start=$(date +%s); "$@"; say "timing: $label $(( $(date +%s) - start )) s"; }

# --- 1. the engine
STARTED_PID=
# shellcheck disable=SC2329  # called by the EXIT trap
stop_engine() {
  if [ -n "$STARTED_PID" ]; then
    say "stopping the dockerd started here (pid $STARTED_PID)"
    kill "$STARTED_PID" 2>/dev/null || true
    for _ in $(seq 60); do kill -0 "$STARTED_PID" 2>/dev/null || break; sleep 1; done
  fi
}
trap stop_engine EXIT
if ! docker info >/dev/null 2>&1; then
  command -v dockerd >/dev/null || { say "no Docker engine (fix: apt-get install -y docker.io, as root)"; exit 2; }
  [ "$(id -u)" = 0 ] || { say "dockerd is not running and only root can start it (fix: start it, or run as root)"; exit 2; }
  say "starting dockerd (log: $WORK/dockerd.log)"
  dockerd >"$WORK/dockerd.log" 2>&1 &
  STARTED_PID=$!
  for _ in $(seq 60); do docker info >/dev/null 2>&1 && break; sleep 1; done
  docker info >/dev/null 2>&1 || { say "dockerd did not come up; see $WORK/dockerd.log"; exit 2; }
fi

# BuildKit, the default builder of current Docker (the classic one is deprecated): the docker CLI
# with buildx, or a CLI older than 23 (Debian's docker.io) that still has BuildKit built in.
KIT_DOCKER=docker
if ! docker buildx version >/dev/null 2>&1; then
  KIT_DOCKER=
  for cli in $(type -ap docker); do
    major=$("$cli" version --format '{{.Client.Version}}' 2>/dev/null | cut -d. -f1)
    if [ -n "$major" ] && [ "$major" -lt 23 ]; then KIT_DOCKER=$cli; break; fi
  done
  [ -n "$KIT_DOCKER" ] || { say "no docker CLI with BuildKit (fix: install docker-buildx, or Debian's docker.io)"; exit 2; }
fi
export DOCKER_BUILDKIT=1 KIT_DOCKER

# --- 2. the stand-in bases
timed "stand-in bases" env DOCKER="$KIT_DOCKER" PYTHON="$PY" dev/standin/build.sh all
mapfile -t standins < <(PYTHON="$PY" dev/standin/build.sh names)

# --- 3. the kit images, from the kit's own targets
# A rebuild leaves the previous image untagged (~6 GB each): remember it, remove it afterwards.
image_id() { docker image inspect --format '{{.Id}}' "$1" 2>/dev/null || true; }
old_ids=("$(image_id "$KIT_STANDIN_NPU_IMAGE")" "$(image_id "$KIT_STANDIN_CUDA_IMAGE")")
npu_flags="--network host"
if grep -q '^torch @ ' "$LOCKS/npu-$(uname -m)-nodeps.txt" 2>/dev/null; then
  npu_flags+=" --build-arg NODEPS_LOCK_SUFFIX=-standin"  # download.pytorch.org: see build.sh
fi
timed "build-npu" env DOCKER="$KIT_DOCKER" IMAGE_NPU="$KIT_STANDIN_NPU_IMAGE" BASE_IMAGE="${standins[1]}" \
  BUILD_FLAGS="$npu_flags" make --no-print-directory build-npu
timed "build-a100" env DOCKER="$KIT_DOCKER" IMAGE_A100="$KIT_STANDIN_CUDA_IMAGE" BASE_IMAGE="${standins[2]}" \
  BUILD_FLAGS="--network host" make --no-print-directory build-a100

for id in "${old_ids[@]}"; do
  if [ -n "$id" ] && [ "$id" != "$(image_id "$KIT_STANDIN_NPU_IMAGE")" ] && [ "$id" != "$(image_id "$KIT_STANDIN_CUDA_IMAGE")" ]; then
    docker image rm "$id" >/dev/null 2>&1 || true
  fi
done

# --- 4. the checks, then the sizes
status=0
timed "in-container checks" env KIT_TEST_IMAGES=1 OMP_NUM_THREADS=1 \
  "$PY" -m pytest -q -p no:cacheprovider tests/test_images.py "$@" || status=$?
docker image ls --format '{{.Repository}}:{{.Tag}}  {{.Size}}' | grep -E '^(kit-standin|cola-repro-kit/.*:standin)' || true
exit "$status"
