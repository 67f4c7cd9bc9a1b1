# GENERATED from docker/versions.toml by docker/lock.py -- do not edit; run `make lock`.
# Sourced by docker/run.sh: building and running the images needs bash, make and docker only.
# shellcheck shell=bash disable=SC2034
NPU_IMAGE='cola-repro-kit/npu:cann8.0.RC3-torch2.1.0-py3.10'
NPU_REGISTRY='docker.io'
NPU_MIRRORS='docker.io quay.io swr'
NPU_BASE_docker_io='ascendai/cann:8.0.rc3.beta1-910b-ubuntu22.04-py3.10'
NPU_BASE_quay_io='quay.io/ascend/cann:8.0.rc3.beta1-910b-ubuntu22.04-py3.10'
NPU_BASE_swr='swr.cn-south-1.myhuaweicloud.com/ascendhub/cann:8.0.rc3.beta1-910b-ubuntu22.04-py3.10'
NPU_BUILD_ARGS='PYTHON_VERSION=3.10 TORCH_VERSION=2.1.0 TRANSFORMERS_VERSION=4.45.2 OPENMIND_VERSION=0.9.1 CANN_VERSION=8.0.RC3 TORCH_NPU_VERSION=2.1.0.post8'
CUDA_IMAGE='cola-repro-kit/cuda:cuda12.1-torch2.1.0-py3.10'
CUDA_REGISTRY='docker.io'
CUDA_MIRRORS='docker.io nvcr.io'
CUDA_BASE_docker_io='nvidia/cuda:12.1.1-runtime-ubuntu22.04'
CUDA_BASE_nvcr_io='nvcr.io/nvidia/cuda:12.1.1-runtime-ubuntu22.04'
CUDA_BUILD_ARGS='PYTHON_VERSION=3.10 TORCH_VERSION=2.1.0 TRANSFORMERS_VERSION=4.45.2 OPENMIND_VERSION=0.9.1 CUDA_VERSION=12.1'
