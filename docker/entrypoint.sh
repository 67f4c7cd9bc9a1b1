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
exec "$@"
