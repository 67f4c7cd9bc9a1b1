"""dev/device_check.py: its CPU dry path end to end (what CI can run of it), the offline package
install from a wheel folder, the targets, and --record, which takes only measured GPU results."""

from __future__ import annotations

import json
import subprocess
import sys
import zipfile

import pytest
from conftest import REPO, recipe_env

from dev import device_check
from recipe.errors import EXIT_BAD_RECORD


@pytest.fixture(scope="module")
def dry_run(tmp_path_factory):
    root = tmp_path_factory.mktemp("device-check")
    proc = subprocess.run([sys.executable, "-m", "dev.device_check", "--dry-run", "--out", str(root / "out"),
                           "--workdir", str(root / "work")], cwd=REPO, env=recipe_env(OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return root / "out", proc


@pytest.mark.slow   # the dry path trains tiny models (dry_run)
def test_the_dry_path_writes_five_files_and_a_table_that_says_it_is_no_measurement(dry_run):
    out, proc = dry_run
    assert sorted(p.name for p in out.iterdir()) == sorted(device_check.FILES)   # the device tool brings back 8 at most
    result = json.loads((out / "device-check.json").read_text())
    assert result["schema"] == device_check.SCHEMA and result["dry_run"] is True and result["measured"] is False
    assert result["device"]["type"] == "cpu" and result["versions"]["torch"]
    names = [row["name"] for row in result["bench"]["configs"]]
    assert names == ["tutorial", "tutorial-aa", "published", "published-plain", "exact", "fast"]
    assert list(result["bench"]["kit_overheads"]) == ["published"]
    assert result["exact_vs_published"]["agree"] and result["exact_vs_published"]["steps"] == 3
    assert [t["met"] for t in result["targets"]] == [None, None, None]               # never judged on a dry run
    assert result["doctor"]["counts"] and json.loads((out / "doctor.json").read_text())["schema"] == "kit.doctor/1"
    table = (out / "device-check.md").read_text()
    assert "DRY RUN on the CPU, not a GPU measurement" in table and "| exact | fp32 | adamw_torch | 4 | dynamic |" in table
    assert "A/A noise floor" in table and "Kit overhead" in table and "n/a (dry run)" in table
    assert table.strip() in (out / "device-check.log").read_text() and table.strip() in proc.stdout


@pytest.mark.slow
def test_record_refuses_a_dry_run_and_appends_a_measured_result_once(dry_run, tmp_path, capsys):
    out, _ = dry_run
    measured = tmp_path / "measured.json"
    measured.write_text(json.dumps({"schema": "kit.measured/1", "runs": []}))
    assert device_check.record(out / "device-check.json", measured) == EXIT_BAD_RECORD
    assert "not a measured device check" in capsys.readouterr().err
    assert json.loads(measured.read_text()) == {"schema": "kit.measured/1", "runs": []}
    # the same file as a GPU would write it
    result = json.loads((out / "device-check.json").read_text())
    result.update(dry_run=False, measured=True, device={**result["device"], "type": "cuda", "name": "NVIDIA H100"})
    gpu = tmp_path / "gpu.json"
    gpu.write_text(json.dumps(result))
    assert device_check.record(gpu, measured) == 0 and device_check.record(gpu, measured) == 0
    data = json.loads(measured.read_text())
    assert data["runs"] == [] and len(data["device_checks"]) == 1
    entry = data["device_checks"][0]
    assert entry["device"]["name"] == "NVIDIA H100" and {c["name"] for c in entry["configs"]} >= {"exact", "fast"}


def _wheel(folder, name: str) -> None:
    """A minimal pure-Python wheel, as pip builds them."""
    info = f"{name}-0.1.dist-info"
    with zipfile.ZipFile(folder / f"{name}-0.1-py3-none-any.whl", "w") as whl:
        whl.writestr(f"{name}/__init__.py", "VALUE = 42\n")
        whl.writestr(f"{info}/METADATA", f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
        whl.writestr(f"{info}/WHEEL", "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: py3-none-any\n")
        whl.writestr(f"{info}/RECORD", "")


def test_missing_packages_come_from_the_wheel_folder_without_an_index(tmp_path, monkeypatch):
    monkeypatch.setattr(device_check, "NEEDED", {"kit_devcheck_fake": "kit_devcheck_fake"})
    monkeypatch.setattr(sys, "path", list(sys.path))
    assert device_check.install_missing(tmp_path / "no-such-folder", tmp_path / "site") == ["kit_devcheck_fake"]
    wheels = tmp_path / "wheels"
    wheels.mkdir()
    _wheel(wheels, "kit_devcheck_fake")
    assert device_check.install_missing(wheels, tmp_path / "site") == []
    assert (tmp_path / "site" / "kit_devcheck_fake" / "__init__.py").is_file()


def test_a_missing_package_stops_the_check_with_the_fix(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(device_check, "NEEDED", {"kit_devcheck_absent": "kit_devcheck_absent"})
    code = device_check.main(["--out", str(tmp_path / "out"), "--wheels", str(tmp_path / "none")])
    assert code == device_check.EXIT_MISSING
    err = capsys.readouterr().err
    assert "kit_devcheck_absent not installed" in err and "make device-wheels" in err
    assert not (tmp_path / "out" / "device-check.json").exists()


def test_the_gpu_bench_is_bert_base_on_cuda_and_fits_the_time():
    args = device_check.parse_args(["--out", "o"])
    argv = device_check.bench_argv(args, device_check.Path("o/bench.json"))
    settings = dict(zip(argv[::2], argv[1::2]))
    assert settings["--model-shape"] == "bert-base" and settings["--device"] == "cuda"
    # 5 configurations and a plain counterpart per --overhead name x rounds x (warm-up + timed window + ~8 s of
    # setup) inside the 8-minute budget: published's pair only
    assert settings["--overhead"] == "published"
    configs = 5 + len(settings["--overhead"].split(","))
    assert configs * int(settings["--rounds"]) * (float(settings["--seconds"]) + 12) < 8 * 60 - 120
    assert "--no-swanlab" in argv and "exact-compiled=exact:train.torch_compile=true" not in argv
    compiled = device_check.bench_argv(device_check.parse_args(["--out", "o", "--with-compile"]), device_check.Path("x"))
    assert "exact-compiled=exact:train.torch_compile=true" in compiled


def _bench(speedups: dict, overhead: dict) -> dict:
    return {"configs": [{"name": n, "speedup_vs_tutorial": v} for n, v in speedups.items()], "kit_overhead": overhead}


def test_targets_are_ratios_and_an_unresolvable_overhead_is_no_overhead():
    bench = _bench({"tutorial": 1.0, "published": 0.99, "exact": 2.5, "fast": 12.0},
                   {"percent": 1.2, "verdict": "not resolvable here"})
    met = {t["config"]: t["met"] for t in device_check.targets(bench, measured=True)}
    assert met == {"fast": True, "exact": False, "published": True}
    slow = _bench({"tutorial": 1.0, "published": 0.9, "exact": 5.0, "fast": 9.0}, {"percent": 11.1, "verdict": "OVER"})
    assert {t["config"]: t["met"] for t in device_check.targets(slow, measured=True)} == {
        "fast": False, "exact": True, "published": False}
    assert all(t["met"] is None for t in device_check.targets(slow, measured=False))


def test_an_installed_package_that_does_not_import_stops_the_check_with_the_fix(tmp_path, monkeypatch, capsys):
    broken = tmp_path / "site" / "kit_devcheck_broken"
    broken.mkdir(parents=True)
    (broken / "__init__.py").write_text("raise ImportError('pyarrow>=24 is required')\n")
    monkeypatch.syspath_prepend(str(tmp_path / "site"))
    monkeypatch.setattr(device_check, "NEEDED", {"kit_devcheck_broken": "kit_devcheck_broken"})
    assert device_check.main(["--out", str(tmp_path / "out"), "--wheels", str(tmp_path / "none")]) == \
        device_check.EXIT_MISSING
    err = capsys.readouterr().err
    assert "import kit_devcheck_broken failed: ImportError: pyarrow>=24 is required" in err
    assert "DEVICE_WHEELS_EXTRA=pyarrow" in err
