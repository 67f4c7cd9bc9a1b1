"""The recipe, slowed down on purpose — test machinery, never shipped in the recipe.

    python tests/fakes/slow_recipe.py SECONDS_PER_STEP RECIPE_ARGS...

Runs `recipe.finetune.run` with one extra Trainer callback that sleeps SECONDS_PER_STEP after each
optimizer step, inside the timed training loop. A run made this way trains exactly the same model
(the sleep touches no tensor) but must read as the slower one in `report.compare`'s headline.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from transformers import TrainerCallback

from recipe import finetune


class SleepEachStep(TrainerCallback):
    def __init__(self, seconds: float):
        self.seconds = seconds

    def on_step_end(self, args, state, control, **kwargs):
        time.sleep(self.seconds)


if __name__ == "__main__":
    seconds = float(sys.argv[1])
    sys.exit(finetune.run(finetune.parse_args(sys.argv[2:]), extra_callbacks=(SleepEachStep(seconds),)))
