# Stand-in for nvidia/cuda:12.1.1-runtime-ubuntu22.04 built by dev/standin/build.sh; its header
# lists every way it differs from the real image (here: the environment only, no CUDA libraries).
ARG UBUNTU_IMAGE=kit-standin/ubuntu:22.04
FROM ${UBUNTU_IMAGE}
ENV NVARCH=x86_64 \
    CUDA_VERSION=12.1.1 \
    NVIDIA_REQUIRE_CUDA="cuda>=12.1" \
    PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin \
    LD_LIBRARY_PATH=/usr/local/nvidia/lib:/usr/local/nvidia/lib64 \
    NVIDIA_VISIBLE_DEVICES=all \
    NVIDIA_DRIVER_CAPABILITIES=compute,utility
CMD ["bash"]
