"""Machinery for developing the kit, not for running it (dev/README.md): the GPU device check
(`python -m dev.device_check`), the mutation-testing driver, the stand-in base images."""
