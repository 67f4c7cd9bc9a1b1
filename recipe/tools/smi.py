"""Parsers for the device tools' text output: `npu-smi info` and nvidia-smi's csv query.

Pure functions over text (no subprocess here) so they are tested against recorded layouts.
The npu-smi table is parsed by cell content, not by column offsets: npu-smi 24.1 prints a
27-wide first column (96 columns in all), 22.0.x/24.1.RC2 a 22-wide one (91 columns), and a
five-digit used value loses the space before the slash (`37705/ 65536`).

It lives in recipe/ because training uses it too: recipe/facade.py samples device memory during a
run with these parsers; the doctor (verify/system.py) reads the same tables.
"""

from __future__ import annotations

import re
from pathlib import Path

_PAIR = re.compile(r"(\d+)\s*/\s*(\d+)")
_BUS_ID = re.compile(r"^[0-9A-Fa-f]{4,8}:[0-9A-Fa-f]{2}:[0-9A-Fa-f]{2}\.[0-9A-Fa-f]$")
_VERSION = re.compile(r"Version:\s*(\S+)")
_NO_PROCESSES = re.compile(r"No running processes found in NPU\s+(\d+)")


def _cells(line: str) -> list[str]:
    """`| a | b |` -> ['a', 'b']; [] for separator lines and anything not a table row."""
    line = line.rstrip()
    if not (line.startswith("|") and line.endswith("|")):
        return []
    return [cell.strip() for cell in line[1:-1].split("|")]


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None  # "-" (second chip of an A3 board) or "NA"


def _int_tokens(text: str) -> list[int]:
    return [int(token) for token in text.split() if token.isdigit()]


def npu_smi_version(text: str) -> str | None:
    """The `Version:` in the banner of `npu-smi info` (the driver version), or None."""
    match = _VERSION.search(text)
    return match.group(1) if match else None


def parse_npu_smi_info(text: str) -> list[dict]:
    """One dict per NPU chip of `npu-smi info`, in printed order.

    Keys: npu, chip, phy_id (None unless the board prints `Chip  Phy-ID`), name, health, power_w,
    temp_c, bus_id, aicore_pct, memory_used_mb, memory_total_mb, hbm_used_mb, hbm_total_mb and
    processes (list of dicts: npu, chip, pid, name, memory_mb).
    """
    chips: list[dict] = []
    pending: dict | None = None  # the "NPU Name | Health" row waiting for its "Chip | Bus-Id" row
    process_header: list[str] | None = None
    processes: list[dict] = []
    for line in text.splitlines():
        cells = _cells(line)
        if len(cells) < 2:
            continue
        if cells[1].startswith("Process id"):
            process_header = cells
            continue
        if process_header is not None:
            process = _process_row(process_header, cells)
            if process is not None:
                processes.append(process)
            continue
        if len(cells) < 3 or cells[1] in ("Health", "Bus-Id"):
            continue
        if _BUS_ID.match(cells[1]):
            if pending is not None:
                chips.append(_chip(pending, cells))
                pending = None
        else:
            pending = cells
    for chip in chips:
        chip["processes"] = [p for p in processes if p["npu"] == chip["npu"] and p["chip"] == chip["chip"]]
    return chips


def _chip(first: list[str], second: list[str]) -> dict:
    npu_and_name = first[0].split(None, 1)
    chip_ids = _int_tokens(second[0])
    power_temp = first[2].split()
    usage_pairs = _PAIR.findall(second[2])
    aicore = second[2].split()[0] if second[2].split() else ""
    memory, hbm = (usage_pairs + [(None, None), (None, None)])[:2]
    return {
        "npu": int(npu_and_name[0]),
        "name": npu_and_name[1].strip() if len(npu_and_name) > 1 else "",
        "health": first[1],
        "power_w": _number(power_temp[0]) if power_temp else None,
        "temp_c": _number(power_temp[1]) if len(power_temp) > 1 else None,
        "chip": chip_ids[0] if chip_ids else 0,
        "phy_id": chip_ids[1] if len(chip_ids) > 1 else None,
        "bus_id": second[1],
        "aicore_pct": _number(aicore),
        "memory_used_mb": _int_or_none(memory[0]),
        "memory_total_mb": _int_or_none(memory[1]),
        "hbm_used_mb": _int_or_none(hbm[0]),
        "hbm_total_mb": _int_or_none(hbm[1]),
    }


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text is not None else None


def _process_row(header: list[str], cells: list[str]) -> dict | None:
    """A process-table row, keyed by the header so npu-smi 26's extra container-pid column fits."""
    if _NO_PROCESSES.search(cells[0]) or len(cells) != len(header):
        return None
    row = dict(zip(header, cells))
    npu_chip = _int_tokens(row.get(header[0], ""))
    pid = row.get("Process id", "")
    memory = row.get("Process memory(MB)", "")
    if len(npu_chip) < 2 or not pid.isdigit():
        return None
    return {"npu": npu_chip[0], "chip": npu_chip[1], "pid": int(pid),
            "name": row.get("Process name", ""), "memory_mb": _int_or_none(memory if memory.isdigit() else None)}


def parse_npu_smi_usages(text: str) -> dict[str, str]:
    """`npu-smi info -t usages -i N` (`Key   : value` lines) -> {key: value}."""
    result = {}
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            result[key.strip()] = value.strip()
    return result


NVIDIA_SMI_QUERY = ["--query-gpu=name,memory.used,memory.total,driver_version", "--format=csv,noheader,nounits"]


def parse_nvidia_smi_csv(text: str) -> list[dict]:
    """Lines of `nvidia-smi --query-gpu=name,memory.used,memory.total,driver_version
    --format=csv,noheader,nounits` -> [{name, memory_used_mb, memory_total_mb, driver}].

    Tolerates a header line and unit suffixes (`2551 MiB`, from `--format=csv`); `[N/A]` -> None.
    """
    gpus = []
    for line in text.splitlines():
        fields = [field.strip() for field in line.split(",")]
        if len(fields) < 4 or fields[0].lower() == "name":
            continue
        # a GPU name may itself contain a comma: the last three fields are the fixed ones
        name = ", ".join(fields[:-3])
        used, total, driver = fields[-3:]
        gpus.append({"name": name, "memory_used_mb": _mib(used), "memory_total_mb": _mib(total),
                     "driver": None if driver.startswith("[") else driver})
    return gpus


def _mib(text: str) -> int | None:
    number = text.split()[0] if text.split() else ""
    return int(float(number)) if re.fullmatch(r"\d+(\.\d+)?", number) else None


def read_key_values(path: Path) -> dict[str, str]:
    """`key=value` lines (version.info, *_install.info); the first occurrence of a key wins."""
    values: dict[str, str] = {}
    for line in path.read_text(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip() and key.strip() not in values:
            values[key.strip()] = value.strip()
    return values


def cann_install_info(home: Path) -> Path | None:
    """<home>/<arch>-linux/ascend_toolkit_install.info, as torch_npu's collect_env looks it up
    (else any ascend_*_install.info one level down); None when there is none."""
    if not home.is_dir():
        return None
    candidates = sorted(home.glob("*-linux/ascend_toolkit_install.info")) or sorted(
        home.glob("*/ascend_*_install.info"))
    return candidates[0] if candidates else None


def cann_version(home: Path) -> str | None:
    """The first `version=` of the CANN install info under ASCEND_HOME_PATH."""
    info = cann_install_info(home)
    return read_key_values(info).get("version") if info else None


def driver_version(version_info: Path) -> str | None:
    """The driver's version from /usr/local/Ascend/driver/version.info."""
    if not version_info.is_file():
        return None
    values = read_key_values(version_info)
    return values.get("Version") or values.get("package_version")
