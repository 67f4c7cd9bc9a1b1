"""SwanLab tracking through its transformers callback.

Local by default when swanboard (SwanLab's offline dashboard) is installed, else offline: both keep
the logs under <run>/swanlog and can be uploaded later with `swanlab sync`; local mode also writes
the dashboard's database there, so `make dashboard RUN=<run>` can show the run. Cloud only when the
user sets SWANLAB_MODE=cloud or SWANLAB_API_KEY. A run never stops to ask for a login: cloud mode
without a key falls back to offline with a warning.
"""

from __future__ import annotations

import importlib.util
import inspect
import os
import sys
from pathlib import Path

MODES = ("cloud", "offline", "local", "disabled")
LOG_DIR_NAME = "swanlog"


def dashboard_installed() -> bool:
    return importlib.util.find_spec("swanboard") is not None


def choose_mode(enabled: bool, environ=os.environ, dashboard: bool | None = None) -> tuple[str, str | None]:
    """(mode, warning). Never returns cloud without an API key."""
    if not enabled:
        return "disabled", None
    requested = environ.get("SWANLAB_MODE", "").strip().lower()
    has_key = bool(environ.get("SWANLAB_API_KEY"))
    if requested and requested not in MODES:
        return "offline", f"SWANLAB_MODE={requested!r} is not one of {MODES}; logging offline"
    if requested == "cloud" or (not requested and has_key):
        if has_key:
            return "cloud", None
        return "offline", ("SWANLAB_MODE=cloud but SWANLAB_API_KEY is not set (no interactive login in a run); "
                           "logging offline — upload later with `swanlab sync`")
    if requested:
        return requested, None
    return ("local" if (dashboard_installed() if dashboard is None else dashboard) else "offline"), None


def make_callback(mode: str, run_dir: Path, project: str, experiment: str, config: dict):
    """The SwanLab callback, or None when tracking is disabled or swanlab is missing."""
    if mode == "disabled":
        return None
    try:
        from swanlab.integration.transformers import SwanLabCallback
    except ImportError:
        print("warning: swanlab is not installed; tracking disabled", file=sys.stderr)
        return None
    log_dir = str(run_dir / LOG_DIR_NAME)
    accepted = inspect.signature(SwanLabCallback.__init__).parameters
    dir_arg = "log_dir" if "log_dir" in accepted else "logdir"  # swanlab 0.4.x says logdir
    kwargs = {"project": project, "experiment_name": experiment, "mode": mode, dir_arg: log_dir}
    if "config" in accepted:
        kwargs["config"] = config
    return SwanLabCallback(**kwargs)


def describe(mode: str, run_dir: Path) -> str:
    """The one line a run prints about its tracking (SwanLab's own lines go to console.log)."""
    log_dir = run_dir / LOG_DIR_NAME
    then = {"local": f"view: make dashboard RUN={run_dir}", "offline": f"upload later: swanlab sync {log_dir}/run-*",
            "cloud": "the run page's address follows"}.get(mode, "")
    return f"tracking: SwanLab {mode} -> {log_dir}" + (f" ({then})" if then else "")


def finish(callback) -> None:
    if callback is None:
        return
    import swanlab
    try:
        swanlab.finish()
    except Exception as err:  # noqa: BLE001 - a tracking hiccup must not fail a finished training
        print(f"warning: swanlab.finish() failed: {err}", file=sys.stderr)
