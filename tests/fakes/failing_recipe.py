"""The recipe with one rank failing on purpose: test machinery, never shipped in the recipe.

    python tests/fakes/failing_recipe.py RANK STEP RECIPE_ARGS...      (or under torchrun)

Runs `recipe.finetune.main` with one extra Trainer callback: global rank RANK raises at the end of
optimizer step STEP, so the tests prove that one failing rank fails the whole torchrun run with
that rank's error shown and no complete-looking summary, and that --resume then continues from
the last complete checkpoint.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from transformers import TrainerCallback

from recipe import finetune


class FailAtStep(TrainerCallback):
    def __init__(self, rank: int, step: int):
        self.rank, self.step = rank, step

    def on_step_end(self, args, state, control, **kwargs):
        if state.global_step == self.step and args.process_index == self.rank:
            raise RuntimeError(f"rank {self.rank} fails at step {self.step} on purpose (test hook)")


if __name__ == "__main__":
    rank, step = int(sys.argv[1]), int(sys.argv[2])
    sys.exit(finetune.main(sys.argv[3:], extra_callbacks=(FailAtStep(rank, step),)))
