"""Environment sanity: the doctor's checks, as tests. A check that does not apply here (no NPU on a
CUDA box, no CANN on a CPU box) is skipped as n/a, unless --require-device makes it mandatory."""

from __future__ import annotations

import pytest

from verify.checks import CHECKS, FAIL, NA


def assert_check(system, entry_id: str, mandatory: bool = False):
    result = CHECKS[entry_id](system)
    if result.status == FAIL:
        pytest.fail(f"{entry_id}: {result.evidence}\n  fix: {result.fix}", pytrace=False)
    if result.status == NA:
        if mandatory:
            pytest.fail(f"{entry_id}: required but not applicable here: {result.evidence}", pytrace=False)
        pytest.skip(f"n/a: {result.evidence}")
    return result


def npu_required(options) -> bool:
    return options.require_device == "npu"


def test_exactly_one_framework(system):
    """openMind's rule: torch and mindspore must not both be installed."""
    assert_check(system, "frameworks")


@pytest.mark.parametrize("entry_id", ["cann-toolkit", "cann-env", "cann-libs", "cann-python-deps"])
def test_cann_installed_and_sourced(system, options, entry_id):
    assert_check(system, entry_id, mandatory=npu_required(options))


@pytest.mark.parametrize("entry_id", ["driver-libs", "driver-devices", "npu-smi"])
def test_ascend_driver_mounted(system, options, entry_id):
    assert_check(system, entry_id, mandatory=npu_required(options))


@pytest.mark.parametrize("entry_id", ["versions-table", "torch-npu-abi", "torch-npu-cann", "torch-npu-exit",
                                      "torch-autoload"])
def test_torch_torch_npu_cann_agree(system, options, entry_id):
    assert_check(system, entry_id, mandatory=npu_required(options) and entry_id != "torch-autoload")


def test_device_visible(system, options):
    required = options.require_device
    result = assert_check(system, "accelerator", mandatory=required != "none")
    if required in ("npu", "cuda"):
        assert result.evidence.startswith({"npu": "torch_npu", "cuda": "torch.cuda"}[required]), result.evidence


@pytest.mark.parametrize("entry_id", ["visible-devices", "cuda-driver", "hccl-timeouts", "swanlab-cloud"])
def test_settings(system, options, entry_id):
    assert_check(system, entry_id, mandatory=entry_id == "cuda-driver" and options.require_device == "cuda")


def test_installed_versions_equal_the_image_lock(system):
    assert_check(system, "image-lock")
