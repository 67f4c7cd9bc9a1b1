"""The trace table from the profilers' own files: self time from nesting in a kineto Chrome trace,
device time from CUDA kernel events and from torch_npu's kernel_details.csv (its documented columns).
The real CPU trace of a run is tested in tests/test_parity_runs.py."""

from __future__ import annotations

import json

import pytest

from recipe import facade, finetune, trace


def op(name, ts, dur, tid=1, cat="cpu_op"):
    """An event as torch.profiler's export_chrome_trace writes it (ts/dur in microseconds)."""
    return {"ph": "X", "cat": cat, "name": name, "pid": 4242, "tid": tid, "ts": ts, "dur": dur, "args": {}}


def write_trace(path, events):
    path.write_text(json.dumps({"schemaVersion": 1, "deviceProperties": [], "traceEvents": events,
                                "traceName": str(path), "displayTimeUnit": "ms"}))
    return path


def test_self_time_subtracts_directly_nested_operators_per_thread():
    events = [op("aten::linear", 0, 100), op("aten::t", 5, 10), op("aten::addmm", 20, 70),
              op("aten::copy_", 30, 20),                       # inside addmm, not linear's direct child
              op("aten::linear", 50, 40, tid=2)]               # another thread: its own nesting
    totals = trace.cpu_self_times(events)
    assert totals["aten::linear"] == pytest.approx((100 - 10 - 70 + 40) / 1000)
    assert totals["aten::addmm"] == pytest.approx((70 - 20) / 1000)
    assert totals["aten::t"] == pytest.approx(0.010) and totals["aten::copy_"] == pytest.approx(0.020)
    assert sum(totals.values()) == pytest.approx((100 + 40) / 1000)   # self times partition the top spans


def test_cuda_kernels_give_device_basis_and_the_share_outside_kernels(tmp_path):
    run = tmp_path / "run"
    (run / "trace").mkdir(parents=True)
    path = write_trace(run / "trace" / "trace.json", [
        op("aten::mm", 0, 50), op("ampere_sgemm_128x64_tn", 10, 300, tid=7, cat="kernel"),
        op("ampere_sgemm_128x64_tn", 200, 200, tid=8, cat="kernel"),          # overlaps the first
        op("vectorized_elementwise_kernel", 600, 100, tid=7, cat="kernel")])
    summary = trace.summarize({"trace": path, "kernel_csv": None}, run, steps=3, wall_ms=1.0)
    assert summary["time_basis"] == "device" and summary["file"] == "trace/trace.json"
    assert summary["top_ops"][0] == {"name": "ampere_sgemm_128x64_tn", "self_ms": 0.5, "share": 0.5}
    # busy: 10..400 and 600..700 = 490 us of the 1000 us traced
    assert summary["outside_kernels_share"] == pytest.approx(0.51)


def test_npu_kernel_details_csv_gives_device_time_per_operator_type(tmp_path):
    out = tmp_path / "run" / "trace" / "host_4242_20261127_ascend_pt" / "ASCEND_PROFILER_OUTPUT"
    out.mkdir(parents=True)
    (out / "trace_view.json").write_text(json.dumps([]))
    (out / "kernel_details.csv").write_text(
        "Step Id,Device_id,Model ID,Task ID,Stream ID,Name,Type,OP State,Accelerator Core,Start Time(us),"
        "Duration(us),Wait Time(us),Block Dim,Mix Block Dim,HF32 Eligible,Input Shapes,Input Data Types,"
        "Input Formats,Output Shapes,Output Data Types,Output Formats\n"
        '3,0,4294967295,12,2,aclnnMm_MatMulCommon_MatMulV2,MatMulV2,dynamic,AI_CORE,1700000000000.0,400.0,0.5,'
        '20,0,NO,"4,768;768,768",FLOAT;FLOAT,ND;ND,"4,768",FLOAT,ND\n'
        "3,0,4294967295,13,2,aclnnAdd_AddAiCore_Add,Add,dynamic,AI_VECTOR_CORE,1700000000300.0,200.0,0.1,"
        '8,0,NO,"4,768;4,768",FLOAT;FLOAT,ND;ND,"4,768",FLOAT,ND\n')
    session = facade.ProfilerSession(profiler=None, directory=tmp_path / "run" / "trace", npu=True)
    summary = trace.summarize(session.files(), tmp_path / "run", steps=2, wall_ms=2.0)
    assert summary["time_basis"] == "device"
    assert summary["file"].endswith("ASCEND_PROFILER_OUTPUT/trace_view.json")
    assert [(o["name"], o["self_ms"]) for o in summary["top_ops"]] == [("MatMulV2", 0.4), ("Add", 0.2)]
    assert summary["outside_kernels_share"] == pytest.approx(1 - 0.5 / 2.0)   # 0..500 us busy


@pytest.mark.parametrize("value", ["0", "-3", "two"])
def test_trace_flag_wants_a_step_count(value, capsys):
    with pytest.raises(SystemExit) as exit_info:
        finetune.parse_args(["--output", "x", "--trace", value])
    assert exit_info.value.code == 2
    assert "is not a step count" in capsys.readouterr().err
