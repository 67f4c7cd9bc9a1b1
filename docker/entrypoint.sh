#!/bin/bash
# Entry point of both images. A non-login `docker run IMAGE python ...` never reads /etc/profile
# or ~/.bashrc, so CANN's environment (LD_LIBRARY_PATH to the driver and toolkit libraries,
# ASCEND_* paths, PYTHONPATH for the op compilers) is sourced here, then the command replaces
# this shell. The NPU image sets KIT_CANN_SET_ENV; the CUDA image leaves it unset.
if [ -n "${KIT_CANN_SET_ENV:-}" ]; then
  if [ ! -f "${KIT_CANN_SET_ENV}" ]; then
    echo "entrypoint: ${KIT_CANN_SET_ENV} not found: this image has no CANN toolkit." >&2
    echo "  fix: rebuild it with \`make build-npu\` (base image from docker/versions.toml)." >&2
    exit 6
  fi
  # shellcheck disable=SC1090
  . "${KIT_CANN_SET_ENV}"
fi
if [ "$#" -eq 0 ]; then
  set -- bash
fi
# KIT_BIND_CORES=1 (make run-* BIND_CORES=1): as Ascend's ModelZoo scripts do on Kunpeng hosts,
# each process gets its own nproc/ranks cores. torchrun starts every rank through this script
# (docker/run.sh), so LOCAL_RANK/LOCAL_WORLD_SIZE name the share; one process gets them all.
# KIT_CPU_BINDING records what was bound, for the run's manifest.
if [ "${KIT_BIND_CORES:-0}" = 1 ]; then
  IFS=, read -ra ranges <<<"$(awk '/^Cpus_allowed_list:/ {print $2}' /proc/self/status)"
  cpus=()
  for range in "${ranges[@]}"; do
    if [[ "${range}" == *-* ]]; then mapfile -t -O "${#cpus[@]}" cpus < <(seq "${range%-*}" "${range#*-}");
    else cpus+=("${range}"); fi
  done
  rank="${LOCAL_RANK:-0}" ranks="${LOCAL_WORLD_SIZE:-1}"
  share=$(( ${#cpus[@]} / ranks ))
  if [ "${share}" -lt 1 ]; then
    echo "entrypoint: BIND_CORES=1 but ${ranks} processes share ${#cpus[@]} cores." >&2
    echo "  fix: run without BIND_CORES, or with fewer processes than cores." >&2
    exit 6
  fi
  mine=$(IFS=,; echo "${cpus[*]:$(( rank * share )):${share}}")
  export KIT_CPU_BINDING="taskset -c ${mine} (local rank ${rank} of ${ranks}, ${share} of ${#cpus[@]} cores)"
  exec taskset -c "${mine}" "$@"
fi
exec "$@"
