"""The NPU-vs-A100 workflow rehearsed as one scenario, on this CPU, the way a user runs it:

1. `make fetch` on each "host" (hub clients replaced by fakes serving the same tiny BERT and CoLA
   rows: the openMind hub on host A, the HF hub on host B), so model and data lie at other paths;
2. the recipe on each host, as `make run-npu` / `make run-a100` start it: host A twice (a repeat,
   for a spread), host B once with `--epochs 3` (the profile's own 3) and a CPU binding exported
   by the image's entry point (KIT_CPU_BINDING);
3. the run directories copied to a third place, the hosts' trees deleted (the comparing machine
   has neither the models nor the data);
4. `make compare` on the copies.

Expected: comparable (paths and number spelling are no difference; the binding is noted), the
headline verdicts by the documented rule (docs/compare.md), every figure equal to the records.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import datasets
import pytest
from conftest import REPO, recipe_env, run_recipe

from recipe import data, facade, hub, model
from recipe.tools import fetch

pytestmark = pytest.mark.slow

VENV = Path(sys.executable).parent.parent   # the environment running the tests, as make's VENV
BINDING = "taskset -c 0 (local rank 0 of 1, 1 of 2 cores)"


class FakeHub:
    """Both hub clients and the dataset loaders, serving the same files to every host."""

    def __init__(self, model_files: Path, rows: datasets.DatasetDict):
        self.model_files, self.rows = model_files, rows

    def snapshot_download(self, repo_id, *, local_dir, **_):
        shutil.copytree(self.model_files, local_dir, dirs_exist_ok=True)
        return local_dir

    def load_hub_dataset(self, api, repo_id, task=hub.GLUE_TASK):
        return self.rows


def fetch_on_host(cache: Path, api: str, served: FakeHub, monkeypatch) -> tuple[Path, Path]:
    """`make fetch FETCH_API=<api>` on one host (python -m recipe.tools.fetch, what the target runs)."""
    with monkeypatch.context() as patch:
        client = types.SimpleNamespace(snapshot_download=served.snapshot_download)
        # the real huggingface_hub with one function replaced: transformers imports more of it lazily
        import huggingface_hub
        patch.setitem(sys.modules, "openmind_hub", client)
        patch.setattr(huggingface_hub, "snapshot_download", served.snapshot_download)
        patch.setattr(facade, "load_hub_dataset", served.load_hub_dataset)
        assert fetch.main(["--cache", str(cache), "--api", api]) == 0
    return fetch.model_dir(cache, api), fetch.data_dir(cache, api)


def run_on_host(model_dir: Path, data_dir: Path, output: Path, *extra: str, env: dict | None = None) -> Path:
    proc = run_recipe("--profile", "smoke", "--device", "cpu", "--no-swanlab", "--model", str(model_dir),
                      "--data", str(data_dir), "--output", str(output), *extra, env=env)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return output


def make_compare(runs: list[Path], out: Path, *settings: str) -> dict:
    """`make compare RUNS=... OUT=... FORMAT=json` with the test's own environment as the venv."""
    proc = subprocess.run(["make", "-s", "--no-print-directory", "-o", f"{VENV}/.stamp", "compare",
                           f"VENV={VENV}", f"RUNS={' '.join(map(str, runs))}", f"OUT={out}", "FORMAT=json",
                           *settings], cwd=REPO, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stdout[-2000:] + proc.stderr[-2000:]
    return json.loads(proc.stdout)


def record(run: Path) -> dict:
    lines = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines() if line.strip()]
    return {"manifest": json.loads((run / "manifest.json").read_text()),
            "summary": json.loads((run / "summary.json").read_text()), "lines": lines}


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    monkeypatch = pytest.MonkeyPatch()
    root = tmp_path_factory.mktemp("workflow")
    # what both hubs serve: one tiny BERT (bytes made once) and one generated CoLA sample
    served_data, _ = data.load_cola("smoke", "transformers", root / "generated", {"train": 1500, "validation": 300})
    served_model = model.write_tiny_bert(root / "served-model", served_data["train"]["sentence"], None, 32, 2)
    served = FakeHub(served_model, served_data)
    host_a, host_b, collected = root / "npu-host", root / "a100-host", root / "collected"
    try:
        model_a, data_a = fetch_on_host(host_a / "cache", "openmind", served, monkeypatch)
        model_b, data_b = fetch_on_host(host_b / "cache", "transformers", served, monkeypatch)
    finally:
        monkeypatch.undo()
    runs = {"npu": run_on_host(model_a, data_a, host_a / "runs" / "npu"),
            "npu-2": run_on_host(model_a, data_a, host_a / "runs" / "npu-2"),
            "a100": run_on_host(model_b, data_b, host_b / "runs" / "a100", "--epochs", "3",
                                env=recipe_env(KIT_CPU_BINDING=BINDING))}
    for name, run in runs.items():   # scp -r both servers' run directories to one place
        shutil.copytree(run, collected / name)
    shutil.rmtree(host_a)
    shutil.rmtree(host_b)   # the comparing machine has neither models nor data
    records = {name: record(collected / name) for name in runs}
    one_each = make_compare([collected / "npu", collected / "a100"], root / "report-one-each")
    # on real cards RUNS="npu npu-2 a100" groups the repeats by device; here every run is a CPU run,
    # so the repeat is named as what it is, a spread group
    repeated = make_compare([collected / "npu", collected / "a100"], root / "report-repeated",
                            f"SPREAD={collected / 'npu'},{collected / 'npu-2'}")
    return {"root": root, "collected": collected, "records": records, "one_each": one_each,
            "repeated": repeated, "paths": {"a": (model_a, data_a), "b": (model_b, data_b)}}


def rows(headline: dict) -> dict:
    return {row["key"]: row for row in headline["rows"]}


def test_the_hosts_recorded_what_they_used_where_it_lay_and_how_they_were_bound(rehearsal):
    a, b = rehearsal["records"]["npu"]["manifest"], rehearsal["records"]["a100"]["manifest"]
    (model_a, data_a), (model_b, data_b) = rehearsal["paths"]["a"], rehearsal["paths"]["b"]
    assert (a["config"]["model"], a["config"]["data"]) == (str(model_a), str(data_a))   # the paths stay recorded
    assert (b["config"]["model"], b["config"]["data"]) == (str(model_b), str(data_b))
    assert model_a != model_b and data_a != data_b
    assert a["identity"] == b["identity"] == {"model": "bert-base-cased", "data": "glue-cola"}
    assert a["model_fingerprint"]["sha256"] == b["model_fingerprint"]["sha256"]
    assert a["data"]["sha256"] == b["data"]["sha256"]
    assert b["config"]["train"]["num_train_epochs"] == 3 and type(b["config"]["train"]["num_train_epochs"]) is int
    assert a["config_sha256"] != b["config_sha256"]   # the paths are in the config: its hash cannot judge
    assert (a["cpu_binding"], b["cpu_binding"]) == (None, BINDING)


def test_the_copied_records_compare_as_comparable_with_the_binding_noted(rehearsal):
    for key in ("one_each", "repeated"):
        headline = rehearsal[key]
        assert headline["comparable"] and headline["reasons"] == [], headline["reasons"]
    report = (rehearsal["root"] / "report-one-each" / "report.md").read_text()
    assert f'`a100`: CPU binding differs: none → `"{BINDING}"`: binding cores changes timings' in report
    assert "NOT comparable" not in report


def test_one_run_each_reads_cannot_tell_for_time_memory_and_oscillation(rehearsal):
    headline = rehearsal["one_each"]
    r = rows(headline)
    assert (headline["side_a"]["runs"], headline["side_b"]["runs"]) == (["npu"], ["a100"])
    for key in ("time", "memory", "oscillation"):
        assert r[key]["verdict"] == "cannot tell", (key, r[key])
        assert "one run each: no spread measured" in r[key]["why"]
    a, b = rehearsal["records"]["npu"], rehearsal["records"]["a100"]
    assert (r["time"]["a"], r["time"]["b"]) == (a["summary"]["train_seconds"], b["summary"]["train_seconds"])
    assert (r["memory"]["a"], r["memory"]["b"]) == (a["summary"]["memory"]["host_rss_mb_peak"],
                                                    b["summary"]["memory"]["host_rss_mb_peak"])
    # the same model, data, seed and threads on both "hosts": the same numbers, so parity holds exactly
    assert r["parity"]["a"] == r["parity"]["b"] == {"accuracy": a["summary"]["final"]["accuracy"],
                                                    "mcc": a["summary"]["final"]["mcc"]}
    assert r["parity"]["verdict"] == "holds"


def test_a_repeat_on_one_host_gives_the_spread_and_the_rule_decides(rehearsal):
    headline, records = rehearsal["repeated"], rehearsal["records"]
    r = rows(headline)
    assert headline["side_a"]["runs"] == ["npu"] and "2 runs" in headline["basis"]
    seconds = [records[n]["summary"]["train_seconds"] for n in ("npu", "npu-2")]
    a, b = records["npu"]["summary"]["train_seconds"], records["a100"]["summary"]["train_seconds"]
    spread = (max(seconds) - min(seconds)) / min(seconds)
    d = (b - a) / a
    expected = "holds" if d > spread else "does not hold" if d < -spread else "cannot tell"
    assert (r["time"]["a"], r["time"]["b"]) == (a, b)
    assert r["time"]["relative"] == pytest.approx(d) and r["time"]["verdict"] == expected
    assert f"spread {100 * spread:.1f} % from --spread" in r["time"]["why"]
    rss = [records[n]["summary"]["memory"]["host_rss_mb_peak"] for n in ("npu", "npu-2", "a100")]
    m_spread, m_d = (max(rss[:2]) - min(rss[:2])) / min(rss[:2]), (rss[2] - rss[0]) / rss[0]
    m_expected = ("holds" if abs(m_d) + m_spread <= 0.10 else "does not hold" if abs(m_d) - m_spread > 0.10
                  else "cannot tell")
    assert r["memory"]["verdict"] == m_expected


def test_train_seconds_leave_out_evaluation_checkpoints_and_what_follows_training(rehearsal):
    for rec in rehearsal["records"].values():
        summary, lines = rec["summary"], rec["lines"]
        evals = sum(line["eval_runtime_s"] for line in lines if line["kind"] == "eval")
        saves = [line["seconds"] for line in lines if line["kind"] == "checkpoint"]
        last = max(line["step"] for line in lines)
        every_25 = list(range(25, last + 1, 25))   # smoke saves every 25 steps (transformers 5: and at the end)
        assert [line["step"] for line in lines if line["kind"] == "checkpoint"] in (every_25, every_25 + [last])
        assert summary["checkpoint_seconds"] == pytest.approx(sum(saves), abs=2e-3)
        assert summary["train_seconds"] == pytest.approx(
            summary["wall_seconds"] - evals - summary["checkpoint_seconds"], abs=2e-3)
        assert summary["timing"]["comparable"] and summary["timing"]["checkpoints_timed"]
        assert set(summary["timing"]["after_training_seconds"]) == {"tracking_finish", "save_model"}
        # the loop's clock stops at on_train_end: the last line before it is the final evaluation
        assert summary["wall_seconds"] >= lines[-1]["elapsed_s"]


def test_make_verify_npu_trains_into_a_run_directory_where_cann_already_logged(tmp_path):
    """docker/run.sh points ASCEND_PROCESS_LOG_PATH at <run>/ascend-log: CANN writes there when
    torch_npu loads (verify's environment checks, the recipe's device probe), before the recipe
    claims the directory. That folder alone is no run: verify trains, and a retry with
    --overwrite replaces the run and keeps the logs."""
    from fakes import fake_torch_npu

    site, run = tmp_path / "site", tmp_path / "runs" / "verify-smoke-npu"
    fake_torch_npu(site, "plog", npu_count=0)   # CANN logs, but this machine has no card
    env = recipe_env(PYTHONPATH=f"{site}:{REPO}", ASCEND_PROCESS_LOG_PATH=str(run / "ascend-log"),
                     TORCH_DEVICE_BACKEND_AUTOLOAD="0")
    probe = subprocess.run([sys.executable, "-c", "import torch, torch_npu; print(torch.npu.is_available())"],
                           env=env, capture_output=True, text=True, check=False)   # verify's environment checks
    assert probe.stdout.strip() == "False" and len(list((run / "ascend-log").rglob("plog-*.log"))) == 1
    verify = subprocess.run([sys.executable, "-m", "pytest", "verify/test_training.py", "-p", "no:cacheprovider",
                             "-q", "--profile", "smoke", "--run-dir", str(run)], cwd=REPO, env=env,
                            capture_output=True, text=True, timeout=900, check=False)
    assert verify.returncode == 0, verify.stdout[-3000:]
    assert (run / "summary.json").is_file()
    assert len(list((run / "ascend-log").rglob("plog-*.log"))) >= 2   # the recipe's process logged too
    retry = run_recipe("--profile", "smoke", "--device", "cpu", "--no-swanlab", "--epochs", "1",
                       "--set", "smoke_data.train=64", "--output", str(run), "--overwrite", env=env)
    assert retry.returncode == 0, retry.stderr[-2000:]
    assert len(list((run / "ascend-log").rglob("plog-*.log"))) >= 2   # the earlier logs are kept
