"""recipe/tools/smi.py against npu-smi / nvidia-smi text in the real layouts (tests/fakes/npu_smi/*.txt)."""

from pathlib import Path

import pytest

from recipe.tools.smi import (
    _cells,
    cann_version,
    driver_version,
    npu_smi_version,
    parse_npu_smi_info,
    parse_npu_smi_usages,
    parse_nvidia_smi_csv,
)

FIXTURES = Path(__file__).parent / "fakes" / "npu_smi"


def fixture(name: str) -> str:
    return (FIXTURES / name).read_text()


def test_healthy_single_card_96_columns():
    text = fixture("healthy_910b4.txt")
    assert {len(line) for line in text.splitlines()} == {98}  # 96 inside the border
    [chip] = parse_npu_smi_info(text)
    assert chip["npu"] == 0 and chip["chip"] == 0 and chip["phy_id"] is None
    assert chip["name"] == "910B4" and chip["health"] == "OK"
    assert (chip["hbm_used_mb"], chip["hbm_total_mb"]) == (2911, 32768)
    assert (chip["memory_used_mb"], chip["memory_total_mb"]) == (0, 0)
    assert chip["power_w"] == 88.4 and chip["temp_c"] == 47.0
    assert chip["bus_id"] == "0000:C1:00.0"
    assert chip["processes"] == []
    assert npu_smi_version(text) == "24.1.rc3"


def test_warning_health_five_digit_memory_and_processes():
    chips = parse_npu_smi_info(fixture("warning_busy_910b3.txt"))
    assert [c["health"] for c in chips] == ["OK", "Warning"]
    # `41022/ 65536`: five digits and no space before the slash
    assert (chips[0]["hbm_used_mb"], chips[0]["hbm_total_mb"]) == (41022, 65536)
    assert (chips[1]["hbm_used_mb"], chips[1]["hbm_total_mb"]) == (3318, 65536)
    assert chips[0]["aicore_pct"] == 87.0
    assert chips[0]["processes"] == [{"npu": 0, "chip": 0, "pid": 48213, "name": "python3", "memory_mb": 37918}]
    assert chips[1]["processes"] == []  # "No running processes found in NPU 1"


def test_old_91_column_layout():
    text = fixture("npu_smi_22_narrow.txt")
    assert {len(line) for line in text.splitlines()} == {93}  # 91 inside the border
    chips = parse_npu_smi_info(text)
    assert [(c["npu"], c["name"], c["hbm_used_mb"], c["hbm_total_mb"]) for c in chips] == [
        (0, "910B", 2571, 32768), (1, "910B", 10264, 32768)]
    assert chips[1]["processes"][0]["pid"] == 7734
    assert npu_smi_version(text) == "22.0.4"


def test_dual_chip_board_with_phy_id_and_dash_power():
    chips = parse_npu_smi_info(fixture("a3_dual_chip.txt"))
    assert [(c["npu"], c["chip"], c["phy_id"]) for c in chips] == [(0, 0, 0), (0, 1, 1)]
    assert chips[1]["power_w"] is None  # printed as "-"
    assert chips[1]["hbm_used_mb"] == 45120
    # the process row names NPU 0 chip 1: it belongs to the second chip only
    assert chips[0]["processes"] == []
    assert [p["pid"] for p in chips[1]["processes"]] == [90211]


def test_process_table_with_container_pid_column():
    # npu-smi 26.x adds "Process id in container"; columns are matched by header name
    text = fixture("healthy_910b4.txt").replace(
        "| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |",
        "| NPU     Chip              | Process id    | Process id in container | Process name    | Process memory(MB) |",
    ).replace(
        "| No running processes found in NPU 0                                                            |",
        "| 0       0                 | 51234         | 88                      | python3         | 1902               |",
    )
    [chip] = parse_npu_smi_info(text)
    assert chip["processes"] == [{"npu": 0, "chip": 0, "pid": 51234, "name": "python3", "memory_mb": 1902}]


@pytest.mark.parametrize("text", ["", "npu-smi: command not found\n", "dcmi module initialize failed. ret is -8005\n"])
def test_non_table_output_gives_no_chips(text):
    assert parse_npu_smi_info(text) == []


def test_usages_key_value():
    text = ("NPU ID                         : 0\nChip Count                     : 1\n\n"
            "DDR Capacity(MB)               : 15171\nHBM Capacity(MB)               : 32768\n"
            "HBM Usage Rate(%)              : 9\n")
    usages = parse_npu_smi_usages(text)
    assert usages["HBM Capacity(MB)"] == "32768" and usages["HBM Usage Rate(%)"] == "9"
    assert usages["NPU ID"] == "0"


def test_nvidia_smi_csv_noheader_nounits():
    text = "NVIDIA A100-SXM4-80GB, 2551, 81920, 535.104.05\nNVIDIA A100-SXM4-80GB, 0, 81920, 535.104.05\n"
    gpus = parse_nvidia_smi_csv(text)
    assert gpus == [
        {"name": "NVIDIA A100-SXM4-80GB", "memory_used_mb": 2551, "memory_total_mb": 81920, "driver": "535.104.05"},
        {"name": "NVIDIA A100-SXM4-80GB", "memory_used_mb": 0, "memory_total_mb": 81920, "driver": "535.104.05"},
    ]


def test_nvidia_smi_csv_with_header_units_and_na():
    text = ("name, memory.used [MiB], memory.total [MiB], driver_version\n"
            "NVIDIA H200, 512 MiB, 143771 MiB, 580.159.04\n"
            "NVIDIA A100 80GB PCIe, [N/A], [N/A], [N/A]\n")
    gpus = parse_nvidia_smi_csv(text)
    assert gpus[0] == {"name": "NVIDIA H200", "memory_used_mb": 512, "memory_total_mb": 143771,
                       "driver": "580.159.04"}
    assert gpus[1] == {"name": "NVIDIA A100 80GB PCIe", "memory_used_mb": None, "memory_total_mb": None,
                       "driver": None}


def test_nvidia_smi_error_text_gives_no_gpus():
    text = ("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver. "
            "Make sure that the latest NVIDIA driver is installed and running.\n")
    assert parse_nvidia_smi_csv(text) == []


# --------------------------------------------------------------------------- edges of the layouts
NAME_ROW = "| 3     910B 3              | OK            | 93.6        41                15   / 32768            |"
BUS_ROW = "| 0                         | 0000:C1:00.0  | 7           15   / 32768      3339 / 65536         |"
PROCESS_HEADER = "| NPU     Chip              | Process id    | Process name             | Process memory(MB)      |"


def test_cells_need_both_borders_and_keep_unpadded_cells_whole():
    assert _cells("|a|bc|") == ["a", "bc"]
    assert _cells("| a | b |   ") == ["a", "b"]          # trailing blanks after the border
    assert _cells("   | a | b |") == []                  # not a table row of npu-smi
    assert _cells("| a | b") == [] and _cells("a | b |") == []


def test_a_chip_row_pair_read_field_by_field():
    [chip] = parse_npu_smi_info(f"{NAME_ROW}\n{BUS_ROW}")
    assert chip["npu"] == 3 and chip["name"] == "910B 3" and chip["chip"] == 0 and chip["phy_id"] is None
    assert (chip["power_w"], chip["temp_c"], chip["aicore_pct"]) == (93.6, 41.0, 7.0)
    assert (chip["memory_used_mb"], chip["memory_total_mb"]) == (15, 32768)
    assert (chip["hbm_used_mb"], chip["hbm_total_mb"]) == (3339, 65536)


def test_missing_fields_read_as_unknown_not_as_errors():
    sparse_name = "| 3                         | OK            |                                                    |"
    sparse_bus = "|                           | 0000:C1:00.0  |                                                    |"
    [chip] = parse_npu_smi_info(f"{sparse_name}\n{sparse_bus}")
    assert (chip["name"], chip["chip"], chip["power_w"], chip["temp_c"], chip["aicore_pct"]) == ("", 0, None, None, None)
    assert chip["memory_used_mb"] is None and chip["hbm_total_mb"] is None
    power_only = "| 3     910B 3              | OK            | 93.6                                               |"
    assert parse_npu_smi_info(f"{power_only}\n{BUS_ROW}")[0]["temp_c"] is None
    power_temp = "| 3     910B 3              | OK            | 93.6        41                                     |"
    assert parse_npu_smi_info(f"{power_temp}\n{BUS_ROW}")[0]["temp_c"] == 41.0   # no hugepages column


def test_a_bus_row_without_its_name_row_is_ignored():
    headers = ["| NPU   Name                | Health        | Power(W)    Temp(C)           Hugepages-Usage(page)|",
               "| Chip                      | Bus-Id        | AICore(%)   Memory-Usage(MB)  HBM-Usage(MB)        |"]
    assert parse_npu_smi_info("\n".join([*headers, BUS_ROW])) == []
    assert parse_npu_smi_info(BUS_ROW) == []
    assert len(parse_npu_smi_info(f"{NAME_ROW}\n{BUS_ROW}\n{BUS_ROW}")) == 1   # one name row, one chip


def test_every_process_row_is_read_and_odd_ones_are_skipped():
    rows = ["| 3       0                 | 101           | python3                  | 2000                    |",
            "| 3       0                 | 102           | torchrun                 | -                       |",
            "| 3                         | 103           | lost-chip                | 10                      |"]
    [chip] = parse_npu_smi_info("\n".join([NAME_ROW, BUS_ROW, PROCESS_HEADER, *rows]))
    assert chip["processes"] == [{"npu": 3, "chip": 0, "pid": 101, "name": "python3", "memory_mb": 2000},
                                 {"npu": 3, "chip": 0, "pid": 102, "name": "torchrun", "memory_mb": None}]


def test_process_columns_are_found_by_their_header_names():
    header = "| NPU     Chip              | Process id    | Process Name             | Process Memory          |"
    row = "| 3       0                 | 101           | python3                  | 2000                    |"
    [chip] = parse_npu_smi_info(f"{NAME_ROW}\n{BUS_ROW}\n{header}\n{row}")
    assert chip["processes"] == [{"npu": 3, "chip": 0, "pid": 101, "name": "", "memory_mb": None}]


def test_nvidia_smi_names_with_commas_and_empty_fields():
    gpus = parse_nvidia_smi_csv("NVIDIA A100-SXM4-80GB, rev 2, 1024, 81920, 535.104.05\nNVIDIA L4, , 23034, 550.54\n")
    assert gpus[0]["name"] == "NVIDIA A100-SXM4-80GB, rev 2" and gpus[0]["memory_used_mb"] == 1024
    assert gpus[1]["memory_used_mb"] is None and gpus[1]["memory_total_mb"] == 23034


def test_cann_and_driver_versions_from_their_info_files(tmp_path):
    home = tmp_path / "ascend-toolkit" / "latest"
    assert cann_version(home) is None                                   # no such directory
    home.mkdir(parents=True)
    assert cann_version(home) is None                                   # no install info
    (home / "x86_64-linux").mkdir()
    (home / "x86_64-linux" / "ascend_toolkit_install.info").write_text("package_name=x\nversion=8.0.RC3\n"
                                                                         "version=9.9\n")
    assert cann_version(home) == "8.0.RC3"                              # the first `version=` wins
    info = tmp_path / "version.info"
    assert driver_version(info) is None
    info.write_text("package_version=24.1.rc3\n")
    assert driver_version(info) == "24.1.rc3"
    info.write_text("Version=24.1.rc3.b010\npackage_version=24.1.rc3\n")
    assert driver_version(info) == "24.1.rc3.b010"
