#!/usr/bin/env bash
# Build, run, verify, open a shell in, and fetch into the kit's two images: one readable docker
# command per action, in the style of NVIDIA DeepLearningExamples' scripts/docker/launch.sh.
#
#   docker/run.sh build-npu | build-a100 | run-npu | run-a100 | verify-npu | verify-a100
#                 | shell-npu | shell-a100 | fetch
#
# The make targets of the same names call it; settings come from the environment (make passes
# its command-line variables there: `make run-npu DEVICES=0,1 PROFILE=published`). Every one is
# validated before docker starts, the command is built as a bash array (no word is ever re-split
# or evaluated), and DRY_RUN=1 prints it, quoted for pasting, instead of running it.
# The host needs bash, coreutils, make and docker: versions come from docker/versions.sh, which
# `make lock` generates from docker/versions.toml. No host Python.
set -euo pipefail
if ((BASH_VERSINFO[0] < 4)); then
  echo "run.sh: bash ${BASH_VERSION} is too old; fix: run with bash >= 4 (every Linux server distribution has it)" >&2
  exit 3
fi

KIT_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
# shellcheck source=docker/versions.sh
. "${KIT_ROOT}/docker/versions.sh"
# Builds on other bases (`make test-images` builds on local stand-ins, docs/images.md): other image
# tags, a base image outside the mirror list, extra `docker build` flags (e.g. --network host).
NPU_IMAGE="${IMAGE_NPU:-${NPU_IMAGE}}"
CUDA_IMAGE="${IMAGE_A100:-${CUDA_IMAGE}}"
BASE_IMAGE="${BASE_IMAGE:-}"
BUILD_FLAGS="${BUILD_FLAGS:-}"

# Exit codes as in recipe/errors.py: 3 a setting is wrong, 6 the host lacks a device.
die() { printf 'run.sh: %s\n  fix: %s\n' "$1" "$2" >&2; exit "${3:-3}"; }
note() { printf 'run.sh: %s\n' "$*" >&2; }

# ----------------------------------------------------------------------------- settings
ACTION="${1:-}"
DOCKER="${DOCKER:-docker}"
DRY_RUN="${DRY_RUN:-}"
PROFILE="${PROFILE:-smoke}"
RUN_NAME="${RUN_NAME:-}"
ARGS="${ARGS:-}"
VERIFY_ARGS="${VERIFY_ARGS:-}"
DEVICES="${DEVICES:-}"
NPROC="${NPROC:-}"
NNODES="${NNODES:-1}"
NODE_RANK="${NODE_RANK:-0}"
MASTER_ADDR="${MASTER_ADDR:-127.0.0.1}"
MASTER_PORT="${MASTER_PORT:-29500}"
# HCCL's 120 s connect default is too short for 8 ranks loading bert-base at different speeds (EI0006)
HCCL_CONNECT_TIMEOUT="${HCCL_CONNECT_TIMEOUT:-1200}"
HCCL_EXEC_TIMEOUT="${HCCL_EXEC_TIMEOUT:-1800}"
KIT_CACHE="${KIT_CACHE:-${KIT_ROOT}/.cache/kit}"
RUNS_DIR="${RUNS_DIR:-${KIT_ROOT}/runs}"
FETCH_API="${FETCH_API:-both}"
FETCH_ON="${FETCH_ON:-npu}"
ASCEND_RUNTIME="${ASCEND_RUNTIME:-}"
REGISTRY="${REGISTRY:-}"
# host: share the host's IPC namespace (HCCL and NCCL need it, as NVIDIA's launch scripts do);
# private: a container /dev/shm of SHM_SIZE instead.
IPC_MODE="${IPC_MODE:-host}"
SHM_SIZE="${SHM_SIZE:-16g}"
# unlimited: --ulimit memlock=-1 as NVIDIA's launch scripts pass it; off: leave the engine's limit
# (a rootless dockerd, or one without CAP_SYS_RESOURCE, refuses memlock=-1: "error setting rlimit type 8").
MEMLOCK="${MEMLOCK:-unlimited}"
# user: files in runs/ and the cache belong to whoever ran make; root: the image's default user.
RUN_AS="${RUN_AS:-user}"
HWHIAIUSER_UID="${HWHIAIUSER_UID:-}"
HWHIAIUSER_GID="${HWHIAIUSER_GID:-}"
BIND_CORES="${BIND_CORES:-0}"
# Where the host's cards and HCCN files are looked for (tests point them at a fake tree).
DEV_DIR="${DEV_DIR:-/dev}"
HCCN_CONF="${HCCN_CONF:-/etc/hccn.conf}"
HCCN_TOOL="${HCCN_TOOL:-/usr/local/Ascend/driver/tools/hccn_tool}"

# Settings that pass into the container by NAME only, when set: docker copies each value from this
# environment, so a key or a proxy password never appears in a command line, a log or the image.
RUN_ENV_NAMES=(SWANLAB_API_KEY SWANLAB_MODE SWANLAB_PROJECT SWANLAB_WORKSPACE SWANLAB_LOG_DIR
               HF_HUB_OFFLINE HF_ENDPOINT HF_TOKEN OPENMIND_HUB_ENDPOINT
               HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy
               PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST
               ASCEND_GLOBAL_LOG_LEVEL ASCEND_SLOG_PRINT_TO_STDOUT)
BUILD_ARG_NAMES=(HTTP_PROXY HTTPS_PROXY NO_PROXY http_proxy https_proxy no_proxy
                 PIP_INDEX_URL PIP_EXTRA_INDEX_URL PIP_TRUSTED_HOST)
# Several nodes: the ranks reach each other over the host network; the interfaces pass by name.
MULTI_NODE_ENV_NAMES=(NCCL_SOCKET_IFNAME HCCL_SOCKET_IFNAME GLOO_SOCKET_IFNAME HCCL_IF_IP)

# ----------------------------------------------------------------------------- validation
is_true() { [[ "$1" =~ ^(1|yes|true)$ ]]; }
need() {  # need NAME REGEX "what it must be"
  local value="${!1}"
  [[ "${value}" =~ $2 ]] || die "${1}=$(show "${value}") is not ${3}" "give ${1} as ${3}, e.g. make ${ACTION} ${1}=${4:-...}"
}
need_int() {  # need_int NAME EXAMPLE MINIMUM; normalized to decimal ("08" would be octal to bash)
  need "$1" '^[0-9]{1,9}$' "a whole number" "${2:-1}"
  printf -v "$1" '%d' "$((10#${!1}))"
  (( ${!1} >= ${3:-0} )) || die "${1}=${!1} is below ${3:-0}" "give ${1} >= ${3:-0}"
}

validate_common() {
  need PROFILE '^[A-Za-z0-9][A-Za-z0-9_.-]*$' "a profile name (recipe/configs/*.yaml)" published
  need RUN_NAME '^([A-Za-z0-9][A-Za-z0-9_.-]*)?$' "a directory name under runs/ (no / or ..)" npu-published
  need KIT_CACHE '^/' "an absolute host path" /data/kit-cache
  need RUNS_DIR '^/' "an absolute host path" /data/runs
  need IPC_MODE '^(host|private)$' "host or private" host
  need SHM_SIZE '^[0-9]+[bkmgBKMG]?$' "a size like 16g" 16g
  need MEMLOCK '^(unlimited|off)$' "unlimited or off" off
  need RUN_AS '^(user|root)$' "user or root" root
  need BIND_CORES '^[01]$' "0 or 1" 1
  need ASCEND_RUNTIME '^1?$' "empty or 1" 1
  need NPU_IMAGE '^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_.-]+)?$' "an image name[:tag]" my/npu:1
  need CUDA_IMAGE '^[a-z0-9][a-z0-9._/-]*(:[A-Za-z0-9_.-]+)?$' "an image name[:tag]" my/cuda:1
  [[ -z "${HWHIAIUSER_GID}" ]] || need_int HWHIAIUSER_GID 1000
  [[ -z "${HWHIAIUSER_UID}" ]] || need_int HWHIAIUSER_UID 1000
  [[ "${DRY_RUN}" =~ ^(|0|1|yes|true|no|false)$ ]] || die "DRY_RUN=$(show "${DRY_RUN}") is not 1 or empty" "DRY_RUN=1 prints the commands"
}

# The cards: DEVICES=0,1,... picks them; NPROC alone means cards 0..NPROC-1; DEVICES=all reads the host.
select_devices() {  # select_devices npu|gpu
  local kind="$1" node="davinci" found=()
  [[ "${kind}" == gpu ]] && node="nvidia"
  if [[ "${DEVICES}" == all ]]; then
    local path
    for path in "${DEV_DIR}/${node}"[0-9]*; do
      local number="${path##*/"${node}"}"
      [[ -e "${path}" && "${number}" =~ ^[0-9]+$ ]] && found+=("${number}")
    done
    ((${#found[@]})) || die "DEVICES=all but there is no ${DEV_DIR}/${node}[0-9]* on this host" \
      "install/load the ${kind^^} driver (check: ls ${DEV_DIR}/${node}*), or list the cards: DEVICES=0,1" 6
    DEVICES="$(printf '%s\n' "${found[@]}" | sort -n | paste -sd, -)"
  elif [[ -z "${DEVICES}" ]]; then
    if [[ -n "${NPROC}" ]]; then need_int NPROC 8 1; DEVICES="$(seq -s, 0 $((NPROC - 1)))"; else DEVICES=0; fi
  fi
  need DEVICES '^[0-9]+(,[0-9]+)*$' "a card list like 0,1,2,3 (or all)" 0,1
  local cards
  IFS=, read -ra cards <<<"${DEVICES}"
  [[ "$(printf '%s\n' "${cards[@]}" | sort -u | wc -l)" -eq "${#cards[@]}" ]] \
    || die "DEVICES=${DEVICES} names a card twice" "list each card once"
  NPROC="${NPROC:-${#cards[@]}}"
  need_int NPROC 8 1
  [[ "${NPROC}" -eq "${#cards[@]}" ]] || die "NPROC=${NPROC} but DEVICES=${DEVICES} lists ${#cards[@]} card(s)" \
    "give one of them, e.g. make ${ACTION} DEVICES=${DEVICES}"
  need_int NNODES 2 1
  need_int NODE_RANK 1 0
  (( NODE_RANK < NNODES )) || die "NODE_RANK=${NODE_RANK} but NNODES=${NNODES}" "NODE_RANK counts 0..NNODES-1"
  need MASTER_ADDR '^[A-Za-z0-9]([A-Za-z0-9.:-]*[A-Za-z0-9])?$' "a host name or IP address" 10.0.0.1
  need_int MASTER_PORT 29500 1
  (( MASTER_PORT <= 65535 )) || die "MASTER_PORT=${MASTER_PORT} is not a port" "give 1..65535"
  need_int HCCL_CONNECT_TIMEOUT 1200 1
  need_int HCCL_EXEC_TIMEOUT 1800 1
  WORLD=$((NPROC * NNODES))
}

# ----------------------------------------------------------------------------- pieces of the command
# One word per element: quote only what the shell would split or expand.
show() {
  local out=() word
  for word in "$@"; do
    if [[ "${word}" =~ ^[A-Za-z0-9_./:=,@%+-]+$ ]]; then out+=("${word}"); else out+=("'${word//\'/\'\\\'\'}'"); fi
  done
  printf '%s\n' "${out[*]}"
}
run() { if is_true "${DRY_RUN}"; then show "$@"; else show "$@" | sed 's/^/+ /' >&2; "$@"; fi; }

# Names whose value is set here; `-e NAME` / `--build-arg NAME` then takes the value from this environment.
pass_by_name() {  # pass_by_name FLAG NAME...
  local flag="$1" name
  shift
  for name in "$@"; do
    if [[ -n "${!name+x}" ]]; then PASS+=("${flag}" "${name}"); fi
  done
}

image_of() { if [[ "$1" == npu ]]; then echo "${NPU_IMAGE}"; else echo "${CUDA_IMAGE}"; fi; }

common_run_args() {  # common_run_args npu|gpu RUN_DIR (the run's container path; "" = no device used)
  CMD=("${DOCKER}" run --rm --init)
  if [[ "${MEMLOCK}" == unlimited ]]; then CMD+=(--ulimit memlock=-1); fi
  CMD+=(--ulimit stack=67108864)
  if [[ "${IPC_MODE}" == host ]]; then CMD+=(--ipc=host); else CMD+=(--shm-size "${SHM_SIZE}"); fi
  CMD+=(-v "${KIT_CACHE}:/cache" -v "${RUNS_DIR}:/runs")
  if [[ "${RUN_AS}" == user ]]; then
    # A uid the image does not know: HOME and USER must still make sense to Python and the hubs.
    CMD+=(--user "$(id -u):$(id -g)" -e HOME=/cache/home -e "USER=$(id -un)")
    if [[ "$1" == npu && -n "${2:-}" ]]; then
      local gid="${HWHIAIUSER_GID:-$(getent group HwHiAiUser 2>/dev/null | cut -d: -f3 || true)}"
      if [[ -n "${gid}" ]]; then
        CMD+=(--group-add "${gid}")  # the driver's group owns /dev/davinci*: keep the cards usable
      else
        note "no HwHiAiUser group on this host: a non-root user may not open /dev/davinci*" \
             "(fix: HWHIAIUSER_GID=<gid owning /dev/davinci0>, or RUN_AS=root)"
      fi
    fi
  fi
  PASS=()
  local names=("${RUN_ENV_NAMES[@]}") name
  for name in $(compgen -e); do [[ "${name}" == SWANLAB_* ]] && names+=("${name}"); done
  mapfile -t names < <(printf '%s\n' "${names[@]}" | sort -u)
  pass_by_name -e "${names[@]}"
  CMD+=("${PASS[@]}")
  if [[ -n "${2:-}" && "$1" == npu ]]; then
    # CANN's plog and device logs: in the run directory, where they outlive --rm.
    CMD+=(-e "ASCEND_PROCESS_LOG_PATH=$2/ascend-log" -e ASCEND_CACHE_PATH=/cache/ascend
          -e ASCEND_WORK_PATH=/cache/ascend)
  fi
  if ((NNODES > 1)); then
    CMD+=(--network host)
    PASS=()
    pass_by_name -e "${MULTI_NODE_ENV_NAMES[@]}"
    CMD+=("${PASS[@]}")
  fi
  if [[ "${BIND_CORES}" == 1 ]]; then CMD+=(-e KIT_BIND_CORES=1); fi
}

npu_access() {  # the chosen cards, the management devices, and the host driver pieces
  if [[ -n "${ASCEND_RUNTIME}" ]]; then  # the Ascend Docker Runtime mounts all of that itself
    CMD+=(--runtime ascend -e "ASCEND_VISIBLE_DEVICES=${DEVICES}")
  else
    local card cards
    IFS=, read -ra cards <<<"${DEVICES}"
    for card in "${cards[@]}"; do CMD+=(--device "/dev/davinci${card}"); done
    CMD+=(--device /dev/davinci_manager --device /dev/devmm_svm --device /dev/hisi_hdc)
    npu_driver_mounts
  fi
  CMD+=(-e "HCCL_CONNECT_TIMEOUT=${HCCL_CONNECT_TIMEOUT}" -e "HCCL_EXEC_TIMEOUT=${HCCL_EXEC_TIMEOUT}")
  if ((NPROC > 1 || NNODES > 1)); then  # HCCL reads the NIC setup; hccn_tool checks it
    if [[ -e "${HCCN_CONF}" ]]; then CMD+=(-v "${HCCN_CONF}:/etc/hccn.conf:ro"); else
      note "no ${HCCN_CONF} on this host: HCCL across nodes needs the NPU NIC addresses (hccn_tool -i 0 -ip -g)"; fi
    if [[ -e "${HCCN_TOOL}" ]]; then CMD+=(-v "${HCCN_TOOL}:/usr/local/Ascend/driver/tools/hccn_tool:ro"); fi
  fi
}

npu_driver_mounts() {  # they must match the host's kernel module: never baked into the image
  CMD+=(-v /usr/local/dcmi:/usr/local/dcmi:ro
        -v /usr/local/bin/npu-smi:/usr/local/bin/npu-smi:ro
        -v /usr/local/Ascend/driver/lib64/:/usr/local/Ascend/driver/lib64/:ro
        -v /usr/local/Ascend/driver/version.info:/usr/local/Ascend/driver/version.info:ro
        -v /etc/ascend_install.info:/etc/ascend_install.info:ro)
}

gpu_access() {  # --gpus needs the inner quotes for a list ("device=0,1"), else docker splits at the comma
  if [[ "${DEVICES_GIVEN}" == all ]]; then CMD+=(--gpus all); else CMD+=(--gpus "\"device=${DEVICES}\""); fi
}

# One process: plain python. Several (NPROC x NNODES > 1): torchrun, one process per card.
# BIND_CORES=1 under torchrun: each rank starts through the image's entry point, which runs it
# under taskset on its share of the cores and records that in KIT_CPU_BINDING.
launcher() {
  LAUNCH=()
  if ((WORLD > 1)); then
    LAUNCH=(python -m torch.distributed.run --nnodes "${NNODES}" --node_rank "${NODE_RANK}"
            --nproc_per_node "${NPROC}" --master_addr "${MASTER_ADDR}" --master_port "${MASTER_PORT}")
    if [[ "${BIND_CORES}" == 1 ]]; then LAUNCH+=(--no-python /opt/kit/docker/entrypoint.sh python); fi
    LAUNCH+=(-m)
  else
    LAUNCH=(python -m)
  fi
}

words() {  # words NAME: the variable split at spaces into the array WORDS (no globbing, no evaluation)
  WORDS=()
  read -ra WORDS <<<"${!1}" || true
}

make_dirs() { run mkdir -p "$@"; }

# ----------------------------------------------------------------------------- actions
build() {  # build npu|cuda
  local image="$1" prefix dockerfile
  prefix="${image^^}"
  dockerfile="docker/${image}/Dockerfile"
  local mirrors_var="${prefix}_MIRRORS" default_var="${prefix}_REGISTRY"
  local registry="${REGISTRY:-${!default_var}}"
  [[ " ${!mirrors_var} " == *" ${registry} "* ]] \
    || die "REGISTRY=${registry} is not a mirror of the ${image} base image" \
           "use one of: ${!mirrors_var} (docker/versions.toml [images.${image}.mirrors])"
  local base_var="${prefix}_BASE_${registry//[^A-Za-z0-9]/_}" args_var="${prefix}_BUILD_ARGS" arg
  local revision
  revision="$(git -C "${KIT_ROOT}" rev-parse HEAD 2>/dev/null || echo unknown)"
  [[ -z "${BASE_IMAGE}" ]] || note "BASE_IMAGE=${BASE_IMAGE} replaces the table's ${!base_var}"
  CMD=("${DOCKER}" build -f "${dockerfile}" --build-arg "BASE_IMAGE=${BASE_IMAGE:-${!base_var}}")
  for arg in ${!args_var}; do CMD+=(--build-arg "${arg}"); done
  CMD+=(--build-arg "REVISION=${revision}")
  if [[ "${image}" == npu ]]; then
    [[ -z "${HWHIAIUSER_UID}" ]] || CMD+=(--build-arg "HWHIAIUSER_UID=${HWHIAIUSER_UID}")
    [[ -z "${HWHIAIUSER_GID}" ]] || CMD+=(--build-arg "HWHIAIUSER_GID=${HWHIAIUSER_GID}")
  fi
  PASS=()
  pass_by_name --build-arg "${BUILD_ARG_NAMES[@]}"
  words BUILD_FLAGS
  CMD+=("${PASS[@]}" "${WORDS[@]}" -t "$(image_of "${image}")" .)
  cd "${KIT_ROOT}"
  run "${CMD[@]}"
}

device_run() {  # device_run npu|gpu NAME_PREFIX: the docker run part of CMD for a run on the cards
  local kind="$1" suffix
  if [[ "${kind}" == npu ]]; then DEVICE=npu IMAGE="${NPU_IMAGE}" suffix=npu; else DEVICE=cuda IMAGE="${CUDA_IMAGE}" suffix=a100; fi
  RUN_NAME="${RUN_NAME:-${2}${PROFILE}-${suffix}}"
  select_devices "${kind}"
  common_run_args "${kind}" "/runs/${RUN_NAME}"
  if [[ "${kind}" == npu ]]; then npu_access; else gpu_access; fi
}

train() {  # train npu|gpu
  device_run "$1" ""
  launcher
  words ARGS
  CMD+=("${IMAGE}" "${LAUNCH[@]}" recipe.finetune --profile "${PROFILE}" --device "${DEVICE}"
        --output "/runs/${RUN_NAME}" "${WORDS[@]}")
  user_dirs
  run "${CMD[@]}"
}

verify() {  # verify npu|gpu
  device_run "$1" verify-
  words VERIFY_ARGS
  CMD+=("${IMAGE}" python -m pytest /opt/kit/verify --profile "${PROFILE}" "${WORDS[@]}"
        --require-device "${DEVICE}" --run-dir "/runs/${RUN_NAME}")
  user_dirs
  run "${CMD[@]}"
}

shell() {  # shell npu|gpu: CANN's logs of the session go to runs/shell-logs/ (or RUN_NAME)
  RUN_NAME="${RUN_NAME:-shell-logs}"
  device_run "$1" ""
  CMD+=(-it "${IMAGE}" bash)
  user_dirs
  run "${CMD[@]}"
}

fetch() {  # downloading needs no card: no --device, no --gpus
  need FETCH_API '^(both|openmind|transformers)$' "both, openmind or transformers" transformers
  need FETCH_ON '^(npu|a100)$' "npu or a100" a100
  NNODES=1 NPROC=1
  if [[ "${FETCH_ON}" == a100 ]]; then
    common_run_args gpu ""
    CMD+=("${CUDA_IMAGE}")
  else
    common_run_args npu ""
    # `import openmind` imports torch_npu, which loads the driver's libraries (not its devices)
    npu_driver_mounts
    CMD+=("${NPU_IMAGE}")
  fi
  CMD+=(python -m recipe.tools.fetch --cache /cache --api "${FETCH_API}")
  user_dirs
  run "${CMD[@]}"
}

user_dirs() {  # created by the invoking user before docker would create them as root
  local dirs=("${KIT_CACHE}" "${RUNS_DIR}")
  [[ "${RUN_AS}" == user ]] && dirs+=("${KIT_CACHE}/home")
  make_dirs "${dirs[@]}"
}

usage() {
  sed -n '2,13p' "${BASH_SOURCE[0]}" | sed 's/^# \{0,1\}//' >&2
  exit 2
}

validate_common
DEVICES_GIVEN="${DEVICES}"
case "${ACTION}" in
  build-npu) build npu ;;
  build-a100) build cuda ;;
  run-npu) train npu ;;
  run-a100) train gpu ;;
  verify-npu) verify npu ;;
  verify-a100) verify gpu ;;
  shell-npu) shell npu ;;
  shell-a100) shell gpu ;;
  fetch) fetch ;;
  *) usage ;;
esac
