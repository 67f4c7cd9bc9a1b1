"""A generated CoLA-format sample for the smoke profile (no hub, deterministic).

Acceptable sentences follow `det [adj] noun verb det [adj] noun .`; unacceptable ones break that
order in ways a tiny model can learn from tokens and positions (verb first, determiner after its
noun, doubled verb, missing object). About 70 % are acceptable, like CoLA's validation split.
Written in the public CoLA release's TSV layout: source code, label, `*` or empty, sentence.
"""

from __future__ import annotations

import argparse
import random
from pathlib import Path

from recipe.record import write_text_atomic

DETERMINERS = ["the", "a", "every", "some", "this"]
ADJECTIVES = ["small", "old", "happy", "green", "quiet", "tall", "brave", "lazy"]
NOUNS = ["dog", "cat", "teacher", "student", "farmer", "bird", "child", "doctor", "river", "book",
         "pilot", "horse", "singer", "king", "baker", "garden"]
VERBS = ["chased", "saw", "liked", "found", "helped", "painted", "visited", "followed", "praised", "read"]
ACCEPTABLE_FRACTION = 0.7
FILES = {"train": "raw/in_domain_train.tsv", "in_domain_dev": "raw/in_domain_dev.tsv",
         "out_of_domain_dev": "raw/out_of_domain_dev.tsv"}


def _noun_phrase(rng: random.Random) -> list[str]:
    words = [rng.choice(DETERMINERS)]
    if rng.random() < 0.5:
        words.append(rng.choice(ADJECTIVES))
    return words + [rng.choice(NOUNS)]


def acceptable_sentence(rng: random.Random) -> str:
    return " ".join(_noun_phrase(rng) + [rng.choice(VERBS)] + _noun_phrase(rng) + ["."])


def unacceptable_sentence(rng: random.Random) -> str:
    subject, verb, obj = _noun_phrase(rng), rng.choice(VERBS), _noun_phrase(rng)
    breakage = rng.randrange(4)
    if breakage == 0:      # verb first
        words = [verb] + subject + obj
    elif breakage == 1:    # determiner after its noun
        words = subject[1:] + subject[:1] + [verb] + obj
    elif breakage == 2:    # doubled verb
        words = subject + [verb, verb] + obj
    else:                  # missing object noun
        words = subject + [verb] + obj[:-1]
    return " ".join(words + ["."])


def generate_rows(count: int, rng: random.Random, source: str, seen: set[str]) -> list[tuple[str, int, str]]:
    rows = []
    while len(rows) < count:
        label = 1 if rng.random() < ACCEPTABLE_FRACTION else 0
        sentence = acceptable_sentence(rng) if label else unacceptable_sentence(rng)
        if sentence in seen:  # keep the held-out splits disjoint from train
            continue
        seen.add(sentence)
        rows.append((source, label, sentence))
    return rows


def write_smoke_dataset(root: Path, train: int = 800, validation: int = 200, seed: int = 0) -> Path:
    """Write the three CoLA TSV files under root/raw/; validation is split in-domain / out-of-domain
    like CoLA's dev set. Returns root."""
    rng = random.Random(seed)
    seen: set[str] = set()
    in_domain = validation // 2
    splits = {
        "train": generate_rows(train, rng, "gen01", seen),
        "in_domain_dev": generate_rows(in_domain, rng, "gen01", seen),
        "out_of_domain_dev": generate_rows(validation - in_domain, rng, "gen02", seen),
    }
    for split, rows in splits.items():
        write_cola_tsv(root / FILES[split], rows)
    return root


def write_cola_tsv(path: Path, rows) -> None:
    """(source, label, sentence) rows in the CoLA release layout: source, label, `*` or empty, sentence."""
    write_text_atomic(path, "".join(f"{src}\t{label}\t{'' if label else '*'}\t{text}\n"
                                    for src, label, text in rows))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Write the smoke profile's generated CoLA-format TSV sample.")
    parser.add_argument("out", type=Path)
    parser.add_argument("--train", type=int, default=800)
    parser.add_argument("--validation", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_smoke_dataset(args.out, args.train, args.validation, args.seed)
    print(f"wrote {args.out}/raw/*.tsv")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
