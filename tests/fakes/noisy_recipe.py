"""The recipe with noisy labels on purpose — test machinery, never shipped in the recipe.

    python tests/fakes/noisy_recipe.py FRACTION RECIPE_ARGS...

Runs `recipe.finetune.main` with the training split's labels shuffled for a seeded FRACTION of its
rows (validation untouched): a deliberately crippled run that learns less, for proving that a
threshold or a seed comparison can fail (tests/test_exact_seeds.py).
"""

from __future__ import annotations

import random
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))

from recipe import data, finetune


def shuffle_labels(dataset, fraction: float, seed: int = 0):
    """`fraction` of the rows get their labels shuffled among themselves (seeded)."""
    rng = random.Random(seed)
    labels = list(dataset["label"])
    chosen = rng.sample(range(len(labels)), int(len(labels) * fraction))
    shuffled = [labels[i] for i in chosen]
    rng.shuffle(shuffled)
    for i, label in zip(chosen, shuffled):
        labels[i] = label
    return dataset.remove_columns("label").add_column("label", labels)


def noisy(load_cola, fraction: float):
    def load(*args, **kwargs):
        dataset, info = load_cola(*args, **kwargs)
        dataset["train"] = shuffle_labels(dataset["train"], fraction)
        return dataset, info
    return load


if __name__ == "__main__":
    data.load_cola = noisy(data.load_cola, float(sys.argv[1]))   # finetune reads it through the module
    sys.exit(finetune.main(sys.argv[2:]))
