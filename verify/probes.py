"""Python-side facts gathered in a child interpreter, so that a broken torch_npu (SystemExit,
segfault, a hung import) cannot take the doctor down with it.

Stages: "meta" (distributions and openMind's framework rule; imports nothing heavy), "torch"
(import torch, CUDA state) and "torch_npu" (import torch_npu, count and touch the NPUs).
The child prints one marker line with a JSON result; anything else it prints is kept as text.
"""

from __future__ import annotations

import json
import re
import subprocess

MARKER = "@@KIT_PROBE@@"
PROBE_TIMEOUT_S = 180
CANN_PYTHON_DEPS = {"decorator": "decorator", "sympy": "sympy", "cffi": "cffi",
                    "protobuf": "google.protobuf", "attrs": "attr"}  # distribution -> module

# Runs in the probed interpreter (Python >= 3.8, stdlib only): keep it self-contained.
CHILD = r'''
import json, sys
MARKER = "@@KIT_PROBE@@"
stage = sys.argv[1]
result = {"stage": stage}

def emit():
    sys.stdout.flush()
    print(MARKER + json.dumps(result, default=str), flush=True)

def meta():
    import importlib.metadata as md, importlib.util, platform, re
    def available(name):  # openmind/utils/import_utils.py::_is_package_available
        if importlib.util.find_spec(name) is None:
            return False
        try:
            md.metadata(name)
            return True
        except md.PackageNotFoundError:
            return False
    dists = {}
    for dist in md.distributions():
        name = dist.metadata["Name"]
        if name:
            dists.setdefault(re.sub(r"[-_.]+", "-", name).lower(), dist.version)  # first on sys.path wins
    def spec(module):
        try:
            return importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            return False
    frameworks = [tag for tag, name in (("pt", "torch"), ("ms", "mindspore")) if available(name)]
    result.update(python=platform.python_version(), machine=platform.machine(), frameworks=frameworks,
                  dists=dists, modules={m: spec(m) for m in sys.argv[2:]},
                  shadowed={n: spec(n) and not available(n) for n in ("torch", "mindspore")})

def torch_stage():
    import warnings
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        import torch
        result.update(version=torch.__version__, cuda=getattr(torch.version, "cuda", None))
        available = bool(torch.cuda.is_available())
        result.update(cuda_available=available, cuda_count=torch.cuda.device_count() if available else 0)
    result["warnings"] = [str(w.message) for w in caught][:5]

def torch_npu_stage():
    import torch_npu
    count = int(torch_npu.npu.device_count())
    result.update(version=getattr(torch_npu, "__version__", None), npu_count=count)
    if count:
        torch_npu.npu.set_device(0)   # first touch: CANN/driver mismatches surface here
        torch_npu.npu.synchronize()
        result["npu_name"] = torch_npu.npu.get_device_name(0)

try:
    {"meta": meta, "torch": torch_stage, "torch_npu": torch_npu_stage}[stage]()
    result["ok"] = True
except SystemExit as exc:
    result.update(ok=False, error="SystemExit", message="exit code %r" % (exc.code,))
except BaseException as exc:
    import traceback
    result.update(ok=False, error=type(exc).__name__, message=str(exc),
                  traceback="".join(traceback.format_exception(type(exc), exc, exc.__traceback__))[-4000:])
emit()
'''


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def run_probe(stage: str, python: str, environ: dict[str, str]) -> dict:
    """The child's JSON result plus `output` (what else it printed), `returncode`, `crashed`."""
    args = [python, "-c", CHILD, stage]
    if stage == "meta":
        args += sorted(CANN_PYTHON_DEPS.values())
    try:
        done = subprocess.run(args, check=False, capture_output=True, text=True, timeout=PROBE_TIMEOUT_S, env=environ)
    except subprocess.TimeoutExpired:
        return {"stage": stage, "ok": False, "error": "Timeout", "returncode": None, "crashed": True,
                "message": f"`{stage}` probe did not finish within {PROBE_TIMEOUT_S} s", "output": ""}
    except OSError as err:
        return {"stage": stage, "ok": False, "error": "OSError", "message": str(err), "returncode": None,
                "crashed": True, "output": ""}
    result, other_lines = None, []
    for line in (done.stdout + done.stderr).splitlines():
        if line.startswith(MARKER):
            result = json.loads(line[len(MARKER):])
        else:
            other_lines.append(line)
    if result is None:  # killed by a signal (segfault) or os._exit before reporting
        result = {"stage": stage, "ok": False, "error": "Crash", "crashed": True,
                  "message": f"the interpreter died (exit status {done.returncode}) before reporting"}
    result.setdefault("crashed", False)
    result["returncode"] = done.returncode
    result["output"] = "\n".join(other_lines)[-4000:]
    return result


def failure_text(result: dict) -> str:
    """Everything a failed probe said: exception, printed text and traceback."""
    parts = [result.get("message") or "", result.get("output") or "", result.get("traceback") or ""]
    return "\n".join(p for p in parts if p)


# What an import failure means, by the text the real stack prints (reference/ascend-stack.md).
SIGNATURES = [
    ("autoload", re.compile(r"Failed to load the backend extension")),
    ("torch-abi", re.compile(r"undefined symbol")),
    ("python-deps", re.compile(r"No module named '(decorator|sympy|cffi|google\.protobuf|google|attr|attrs)'")),
    ("driver-libs", re.compile(r"libascend_hal\.so|libdrvdsmi|libdcmi\.so")),
    ("cann-libs", re.compile(r"lib(hccl|ascendcl|ge_runner|graph|runtime|acl_op_compiler)\.so|set_env\.sh")),
    ("cann-mismatch", re.compile(r"ERR00008|EH9999|PTA resource not found")),
]


def diagnose(result: dict) -> list[str]:
    """Kinds of failure a probe result shows, most specific first ([] when it worked)."""
    if result.get("ok"):
        return []
    text = failure_text(result)
    kinds = [kind for kind, pattern in SIGNATURES if pattern.search(text)]
    if kinds and "python-deps" in kinds and "cann-mismatch" in kinds:
        kinds.remove("cann-mismatch")  # EH9999 "init failed" caused by a missing dependency
    if result.get("error") == "SystemExit" or result.get("crashed"):
        kinds.append("exit")
    return kinds or ["other"]


def first_line(text: str, limit: int = 160) -> str:
    for line in text.splitlines():
        if line.strip():
            line = line.strip()
            return line if len(line) <= limit else line[: limit - 1] + "…"
    return ""


def key_line(result: dict, limit: int = 160) -> str:
    """The most telling line of a failure, for the evidence column."""
    text = failure_text(result)
    for kind, pattern in SIGNATURES:
        for line in text.splitlines():
            if pattern.search(line):
                line = line.strip()
                return line if len(line) <= limit else line[: limit - 1] + "…"
    return first_line(text, limit)   # no signature: the first line said (the message comes first)
