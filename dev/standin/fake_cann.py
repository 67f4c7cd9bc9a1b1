"""Write the stand-in's fake CANN toolkit under /usr/local/Ascend (runs inside cann.Dockerfile).

The tree is the doctor's own fake (fake_ascend_root of tests/fakes/__init__.py, copied in as fakes.py), so the
image and the unit tests agree on the layout. Only set_env.sh is rewritten to export everything the
real CANN 8.0 set_env.sh exports, prepending to LD_LIBRARY_PATH / PYTHONPATH / PATH as it does, so
the kit's entry point is tested against a script that touches the variables the kit also sets.
The driver is left out: the real base image has none either (it is mounted from the host).
"""

from __future__ import annotations

import platform
import sys
from pathlib import Path

from fakes import fake_ascend_root

ROOT = Path("/usr/local/Ascend")


def set_env_text(root: Path) -> str:
    home = root / "ascend-toolkit" / "latest"
    return f"""\
# Stand-in for CANN's ascend-toolkit/set_env.sh (cola-repro-kit dev/standin): the same exports.
export ASCEND_TOOLKIT_HOME={home}
export LD_LIBRARY_PATH={root}/driver/lib64/common:{root}/driver/lib64/driver:\\
${{ASCEND_TOOLKIT_HOME}}/lib64:${{ASCEND_TOOLKIT_HOME}}/lib64/plugin/opskernel:${{LD_LIBRARY_PATH:-}}
export PYTHONPATH=${{ASCEND_TOOLKIT_HOME}}/python/site-packages:\\
${{ASCEND_TOOLKIT_HOME}}/opp/built-in/op_impl/ai_core/tbe:${{PYTHONPATH:-}}
export PATH=${{ASCEND_TOOLKIT_HOME}}/bin:${{ASCEND_TOOLKIT_HOME}}/compiler/ccec_compiler/bin:${{PATH}}
export ASCEND_AICPU_PATH=${{ASCEND_TOOLKIT_HOME}}
export ASCEND_OPP_PATH=${{ASCEND_TOOLKIT_HOME}}/opp
export TOOLCHAIN_HOME=${{ASCEND_TOOLKIT_HOME}}/toolkit
export ASCEND_HOME_PATH=${{ASCEND_TOOLKIT_HOME}}
"""


def main(cann_version: str, root: Path = ROOT) -> None:
    fake_ascend_root(root, cann=cann_version, driver=None, arch=platform.machine())
    home = root / "ascend-toolkit" / "latest"
    for sub in ("python/site-packages", "opp/built-in/op_impl/ai_core/tbe", "bin", "lib64/plugin/opskernel"):
        (home / sub).mkdir(parents=True, exist_ok=True)
    (root / "ascend-toolkit" / "set_env.sh").write_text(set_env_text(root))


if __name__ == "__main__":
    main(sys.argv[1])
