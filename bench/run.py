"""Time the tutorial's raw settings, the kit's `published`, `exact` and `fast` profiles side by side.

All configurations run in ONE process on ONE device, on the same data and model directories,
interleaved round by round, each for a few warm-up steps and then a timed window. Configurations run
in pairs that stay adjacent in every round (tutorial with tutorial-aa, each kit profile with its plain
counterpart); the pairs rotate each round and the order inside a pair alternates, so that no
configuration always runs first, or always right after the heaviest one. The table reports medians
over rounds; speed-ups are medians of the per-round ratios to the tutorial run of the same round, so a
shared machine's load drift cancels. `tutorial-aa` is the tutorial script again: the A/A pair whose
per-round ratios give the noise floor, under which a difference is reported as not resolvable here.
The kit-overhead figures (--overhead, default published, exact and fast) put each kit profile (run
record, token counter, parity/energy/stop callbacks, memory sampler, SwanLab offline) against
`PROFILE-plain`: the plain Trainer script (bench/tutorial.py) given the very TrainingArguments and data
handling the kit resolves for that profile; each round checks that the two runs' TrainingArguments are
the same field by field.
Before the timing, a parity phase trains the tutorial and every configuration with the published
math for a few steps on a dropout-free copy of the model and compares their per-step losses.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import os
import sys
from dataclasses import dataclass, field
from pathlib import Path

import torch

from bench import parity, timing, tutorial, workload
from recipe import compat, distributed, equivalence, facade, finetune, record
from recipe import config as kit_config
from recipe.errors import EXIT_BENCH_FAILED, KitError

SCHEMA = "kit.bench/1"
MAX_TIMED_STEPS = 100_000   # the timer stops a run long before; a cap only for a broken timer
EXIT_FAILED = EXIT_BENCH_FAILED   # a configuration failed to train (the recipe's own codes are 2-7)


@dataclass
class Config:
    name: str
    profile: str | None            # None: the raw tutorial script
    sets: list[str] = field(default_factory=list)
    plain: bool = False            # the tutorial script with this profile's resolved settings (no kit)
    partner: str | None = None     # the configuration it runs next to in every round (its pair)

    @property
    def kind(self) -> str:
        return "raw script" if self.profile is None else "plain script" if self.plain else "kit"

    def math_changes(self) -> list[str]:
        """What makes this configuration a different experiment from published ([] for the tutorial)."""
        if self.profile is None:
            return []
        config = kit_config.apply_overrides(kit_config.load_profile(self.profile), self.sets)
        return equivalence.compare(config, config.get("train", {}))["math_changes"]


DEFAULT_CONFIGS = (Config(timing.BASELINE, None), Config(timing.AA_BASELINE, None, partner=timing.BASELINE),
                   Config("published", "published"), Config("exact", "exact"), Config("fast", "fast"))
DEFAULT_OVERHEAD = ("published", "exact", "fast")
PLAIN_SUFFIX = "-plain"
# TrainingArguments fields that name where a run writes, not how it trains: left out of the comparison
PATH_FIELDS = ("output_dir", "logging_dir", "run_name")


def plain_counterpart(config: Config) -> Config:
    """NAME-plain: the tutorial script with `config`'s profile and --set overrides, resolved as the kit does."""
    return Config(config.name + PLAIN_SUFFIX, config.profile, list(config.sets), plain=True, partner=config.name)


def configurations(variants: list[Config], overhead: list[str]) -> list[Config]:
    """The default configurations and the variants, each kit configuration named in `overhead`
    followed by its plain counterpart."""
    configs = []
    for config in [*DEFAULT_CONFIGS, *variants]:
        configs.append(config)
        if config.name in overhead:
            configs.append(plain_counterpart(config))
    return configs


def parse_overhead(text: str) -> list[str]:
    return [] if text.strip() == "none" else [name.strip() for name in text.split(",") if name.strip()]


def parse_variant(text: str) -> Config:
    """NAME=PROFILE[:KEY=VALUE,KEY=VALUE] -> a kit configuration with --set overrides."""
    name, _, rest = text.partition("=")
    profile, _, sets = rest.partition(":")
    if not name or not profile:
        raise argparse.ArgumentTypeError(f"--variant {text!r}: write NAME=PROFILE[:KEY=VALUE,...], "
                                         "e.g. fast-grouped=fast:train.group_by_length=true")
    return Config(name, profile, [s for s in sets.split(",") if s])


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__.split("\n\n")[0],
                                     epilog=f"exit codes: 0 ok, 2 usage, 3-7 as the recipe, {EXIT_FAILED} a "
                                            "configuration failed to train")
    parser.add_argument("--model-shape", choices=sorted(workload.SHAPES), default="tiny",
                        help="tiny (the smoke profile's BERT; ratios only) or bert-base (random weights)")
    parser.add_argument("--device", default="auto", choices=("auto", *facade.DEVICE_TYPES))
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds (default 3)")
    parser.add_argument("--warmup-steps", type=int, default=5, help="untimed steps per run (default 5)")
    parser.add_argument("--min-steps", type=int, default=10, help="timed steps per run, at least (default 10)")
    parser.add_argument("--seconds", type=float, default=3.0, help="timed seconds per run, at least (default 3)")
    parser.add_argument("--train-rows", type=int, default=2048,
                        help="generated training rows (default 2048; a multiple of 32 keeps every batch full)")
    parser.add_argument("--parity-steps", type=int, default=20,
                        help="steps of the per-step loss check on a dropout-free model (default 20; 0: skip)")
    parser.add_argument("--variant", action="append", type=parse_variant, default=[],
                        metavar="NAME=PROFILE[:K=V,...]", help="an extra kit configuration (repeatable)")
    parser.add_argument("--overhead", type=parse_overhead, default=list(DEFAULT_OVERHEAD), metavar="NAME,...",
                        help="kit configurations whose overhead to measure, each against NAME-plain, the plain Trainer "
                             "script with the same TrainingArguments and data handling (default "
                             f"{','.join(DEFAULT_OVERHEAD)}; a --variant's name works too; none: no overhead figures)")
    parser.add_argument("--threads", type=int, help="torch CPU threads (default: torch's choice)")
    parser.add_argument("--no-swanlab", action="store_true", help="kit runs without SwanLab (default: offline)")
    parser.add_argument("--peak-tflops", type=float, help="the device's peak TFLOPS for MFU, when not in the "
                                                          "built-in table (H100, H200, A100)")
    parser.add_argument("--workdir", type=Path, default=Path("runs/bench"), help="data, model, runs, logs")
    parser.add_argument("--json", type=Path, help="result file (default WORKDIR/bench.json)")
    args = parser.parse_args(argv)
    if args.parity_steps < 0:
        parser.error("--parity-steps must be at least 0")
    for name in ("rounds", "warmup_steps", "min_steps", "train_rows"):
        if getattr(args, name) < 1:
            parser.error(f"--{name.replace('_', '-')} must be at least 1")
    kits = [c.name for c in [*DEFAULT_CONFIGS, *args.variant] if c.profile is not None]
    unknown = [name for name in args.overhead if name not in kits]
    if unknown:
        parser.error(f"--overhead {','.join(unknown)}: not a kit configuration (one of {', '.join(kits)})")
    names = [c.name for c in configurations(args.variant, args.overhead)]
    if len(set(names)) != len(names):
        parser.error(f"configuration names must be unique: {names}")
    return args


def rotated(configs: list, round_index: int) -> list:
    shift = round_index % len(configs)
    return configs[shift:] + configs[:shift]


def round_order(configs: list[Config], round_index: int) -> list[Config]:
    """This round's running order: each configuration next to its partner (the pairs whose per-round
    ratios are the A/A floor and the kit overheads), the pairs rotated, and the order inside every pair
    reversed in odd rounds, so neither side of a pair always runs first."""
    groups: list[list[Config]] = []
    for config in configs:
        group = next((g for g in groups if config.partner in {c.name for c in g}), None)
        if group is None:
            groups.append([config])
        else:
            group.append(config)
    return [config for group in rotated(groups, round_index)
            for config in (reversed(group) if round_index % 2 else group)]


# --------------------------------------------------------------------------- one timed run
@dataclass
class RunResult:
    timing: timing.RoundTiming
    precision: str
    optim: str
    group_by_length: bool
    padding: str
    peak_memory: dict
    tokens: tuple[int, int] | None     # (real, total) over one epoch of this run's batches
    training_arguments: dict | None = None   # the Trainer's, PATH_FIELDS left out (round 0 only)


def train_overrides(warmup_steps: int) -> dict:
    """What the bench changes in every configuration alike (the raw script and the kit's)."""
    return {"max_steps": warmup_steps + MAX_TIMED_STEPS, "eval_strategy": "no", "save_strategy": "no"}


def kit_argv(config: Config, out: Path, device: facade.Device, data_dir: Path, model_dir: Path,
             overrides: dict, no_swanlab: bool) -> list[str]:
    argv = ["--profile", config.profile, "--output", str(out), "--overwrite", "--device", device.type,
            "--api", "transformers", "--data", str(data_dir), "--model", str(model_dir)]
    for key, value in overrides.items():
        argv += ["--set", f"train.{key}='{value}'" if isinstance(value, str) else f"train.{key}={value}"]
    for setting in config.sets:
        argv += ["--set", setting]
    return argv + (["--no-swanlab"] if no_swanlab else [])


def count_tokens(dataloader) -> tuple[int, int]:
    """(real, total) tokens over one pass of a run's own training batches (outside the timed window)."""
    real = total = 0
    for batch in dataloader:
        mask = batch["attention_mask"]
        real, total = real + int(mask.sum()), total + mask.numel()
    return real, total


def precision_of(args) -> str:
    return "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32"


def plain_settings(argv: list[str], device: facade.Device) -> tuple[dict, dict]:
    """(TrainingArguments settings without output_dir, tokenize section) that the kit's run with `argv`
    (kit_argv) gives its Trainer, resolved by the recipe's own steps in recipe/finetune.py's order: the
    profile with its overrides, the device's speed settings, the batch for this world size, the
    device's settings, the names of the installed transformers."""
    from transformers import TrainingArguments

    config = finetune.resolve_config(finetune.parse_args(argv))
    world = distributed.world_size()
    train_settings, _ = facade.resolve_speed_settings(dict(config["train"]), config.get("precision"), device)
    train_settings, _ = distributed.plan_batch(train_settings, world)
    settings = compat.compatible_training_settings(TrainingArguments, {
        "output_dir": "unused", "report_to": "none", **facade.device_training_settings(device, world),
        **train_settings})
    settings.pop("output_dir")
    return settings, dict(config.get("tokenize", {}))


def train(config: Config, device: facade.Device, data_dir: Path, model_dir: Path, out: Path, overrides: dict,
          callbacks: list, no_swanlab: bool) -> str:
    """Train `config` (the raw tutorial script, a kit profile or its plain counterpart) with the bench's
    `overrides`; returns the padding it used."""
    gc.collect()
    module = facade.accelerator(device.type)
    if module is not None:
        module.empty_cache()
    facade.reset_peak_memory(device)
    if config.profile is None:
        tutorial.train(model_dir, data_dir, out, device.type == "cpu", overrides, callbacks)
        return "max_length"
    argv = kit_argv(config, out, device, data_dir, model_dir, overrides, no_swanlab)
    if config.plain:   # the overrides are in the resolved settings already, as in the kit's run
        settings, tokenize = plain_settings(argv, device)
        tutorial.train(model_dir, data_dir, out, device.type == "cpu", {}, callbacks, settings, tokenize)
        return tokenize.get("padding", "max_length")
    finetune.run(finetune.parse_args(argv), extra_callbacks=tuple(callbacks))
    return record.load_manifest(out)["config"]["tokenize"].get("padding", "max_length")


def comparable_arguments(args) -> dict:
    """TrainingArguments as a dict, without the fields that only say where a run writes."""
    return {k: v for k, v in args.to_dict().items() if k not in PATH_FIELDS}


def differing_fields(kit: dict | None, plain: dict | None) -> list[str]:
    """TrainingArguments fields whose values differ between two runs (['(not recorded)'] without both)."""
    if kit is None or plain is None:
        return ["(not recorded)"]
    return sorted(k for k in set(kit) | set(plain) if kit.get(k, "(absent)") != plain.get(k, "(absent)"))


def run_once(config: Config, round_index: int, args: argparse.Namespace, device: facade.Device,
             data_dir: Path, model_dir: Path, log) -> RunResult:
    timer = timing.StepTimer(device, args.warmup_steps, args.min_steps, args.seconds)
    out = args.workdir / "runs" / config.name
    with contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
        padding = train(config, device, data_dir, model_dir, out, train_overrides(args.warmup_steps), [timer],
                        args.no_swanlab)
        tokens = count_tokens(timer.train_dataloader) if round_index == 0 else None
    if timer.seconds is None:
        raise RuntimeError(f"{config.name}: the run ended before the timed window started "
                           f"(fewer than {args.warmup_steps + 1} steps)")
    trainer_args = timer.args
    grouped = bool(getattr(trainer_args, "group_by_length", False)) or \
        getattr(trainer_args, "train_sampling_strategy", None) == "group_by_length"
    return RunResult(timing.RoundTiming(config.name, round_index, timer.steps, timer.seconds,
                                        trainer_args.per_device_train_batch_size, timer.cpu_seconds),
                     precision_of(trainer_args), str(getattr(trainer_args.optim, "value", trainer_args.optim)),
                     grouped, padding, facade.allocator_peaks_mb(device), tokens,
                     comparable_arguments(trainer_args) if round_index == 0 else None)


# --------------------------------------------------------------------------- the table
def summarize(results: list[RunResult], configs: list[Config], lengths: list[int], size: dict,
              device_name: str, peak_override: float | None, parity_result: dict | None = None) -> list[dict]:
    timings = [r.timing for r in results]
    floor = timing.noise_floor_percent(timings)
    real_per_sample = sum(lengths) / len(lengths)
    context = sum(n * n for n in lengths) / sum(lengths)   # the mean length a real token attends over
    flops_per_token = timing.train_flops_per_token(size["nonembedding_parameters"], size["layers"],
                                                   size["hidden_size"], context)
    rows = []
    for config in configs:
        mine = [r for r in results if r.timing.config == config.name]
        first = mine[0]
        sps = timing.median_samples_per_second(timings, config.name)
        ratios = timing.paired_ratios(timings, config.name)
        tokens = next((r.tokens for r in mine if r.tokens), None)
        peak = peak_override or timing.peak_tflops(device_name, first.precision)
        allocated = [r.peak_memory["peak_allocated_mb"] for r in mine if r.peak_memory["peak_allocated_mb"]]
        reserved = [r.peak_memory["peak_reserved_mb"] for r in mine if r.peak_memory["peak_reserved_mb"]]
        mfu = timing.model_flops_utilisation(sps * real_per_sample, flops_per_token, peak)
        rows.append({
            "name": config.name, "kind": config.kind, "profile": config.profile, "sets": config.sets,
            "partner": config.partner,
            "precision": first.precision, "optim": first.optim, "batch_size": first.timing.batch_size,
            "padding": first.padding, "group_by_length": first.group_by_length,
            "samples_per_second": round(sps, 3),
            "real_tokens_per_second": round(sps * real_per_sample, 1),
            "padding_fraction": None if tokens is None else round(timing.padding_fraction(*tokens), 4),
            "projected_3_epoch_seconds": round(timing.projected_seconds(sps), 1),
            "peak_allocated_mb": max(allocated) if allocated else None,
            "peak_reserved_mb": max(reserved) if reserved else None,
            "speedup_vs_tutorial": round(timing.speedup(timings, config.name), 3),
            "time_per_sample_vs_tutorial_percent": round(timing.overhead_percent(timing.speedup(timings, config.name)), 2),
            "resolvable": None if config.name == timing.BASELINE else
            timing.resolvable(timing.overhead_percent(timing.speedup(timings, config.name)), floor),
            "speedup_range": [round(min(ratios), 3), round(max(ratios), 3)],
            "speedup_per_round": [round(r, 4) for r in ratios],
            "mfu": None if mfu is None else round(mfu, 5),
            "peak_tflops_assumed": peak,
            "rounds": [r.timing.as_record() for r in mine],
            "loss_vs_tutorial": (parity_result or {}).get("configs", {}).get(config.name),
        })
    return rows


def noise_floor(results: list[RunResult]) -> dict | None:
    timings = [r.timing for r in results]
    floor = timing.noise_floor_percent(timings)
    if floor is None:
        return None
    return {"percent": round(floor, 2), "configuration": timing.AA_BASELINE,
            "per_round_percent": [round(timing.overhead_percent(r), 2)
                                  for r in timing.paired_ratios(timings, timing.AA_BASELINE)],
            "measures": "the largest per-round difference in wall time per sample between the tutorial script and "
                        "the same script run again in the same round (A/A)"}


def overhead_verdict(percent: float, floor: float | None) -> str:
    """'not resolvable here' inside the A/A noise floor; else whether the kit stays within the limit."""
    if timing.resolvable(percent, floor) is False:
        return "not resolvable here"
    return "within" if percent <= timing.OVERHEAD_LIMIT_PERCENT else "OVER"


def kit_overheads(results: list[RunResult], configs: list[Config], floor: dict | None = None) -> dict[str, dict]:
    """Per kit configuration with a plain counterpart: its wall time per sample against the
    counterpart's, from the per-round ratios of the two (run side by side in every round)."""
    timings = [r.timing for r in results]
    floor_percent = floor["percent"] if floor else None
    overheads = {}
    for plain in (c for c in configs if c.plain):
        kit = plain.partner
        ratios = timing.paired_ratios(timings, kit, baseline=plain.name)
        if not ratios:
            continue
        percent = timing.overhead_percent(timing.speedup(timings, kit, baseline=plain.name))
        arguments = {name: next((r.training_arguments for r in results
                                 if r.timing.config == name and r.training_arguments is not None), None)
                     for name in (kit, plain.name)}
        differ = differing_fields(arguments[kit], arguments[plain.name])
        overheads[kit] = {
            "config": kit, "plain": plain.name, "percent": round(percent, 2),
            "limit_percent": timing.OVERHEAD_LIMIT_PERCENT, "within_limit": percent <= timing.OVERHEAD_LIMIT_PERCENT,
            "noise_floor_percent": floor_percent, "resolvable": timing.resolvable(percent, floor_percent),
            "verdict": "not comparable" if differ else overhead_verdict(percent, floor_percent),
            "per_round_percent": [round(timing.overhead_percent(r), 2) for r in ratios],
            "training_arguments_differ": differ,
            "measures": f"wall time per training sample of the kit's {kit} run (run record, token counter, "
                        "parity/energy/stop callbacks, device memory sampler, SwanLab offline unless --no-swanlab) "
                        f"against {plain.name}: the plain Trainer script (bench/tutorial.py) with the same "
                        "TrainingArguments and data handling, run next to it in every round; warm-up excluded; "
                        "median of per-round ratios"}
    return overheads


def overhead_line(overhead: dict) -> str:
    head = (f"kit overhead ({overhead['config']} vs {overhead['plain']}, wall time per sample): "
            f"{overhead['percent']:+.2f} %")
    rounds = f"per round {overhead['per_round_percent']}"
    if overhead["verdict"] == "not comparable":
        return (f"{head} ({rounds}): NOT COMPARABLE, the two runs' TrainingArguments differ in "
                f"{', '.join(overhead['training_arguments_differ'])}")
    if overhead["verdict"] == "not resolvable here":
        return (f"{head}, inside the A/A noise floor of +-{overhead['noise_floor_percent']:.2f} %: not resolvable "
                f"here (limit {overhead['limit_percent']:.0f} %; {rounds})")
    return f"{head} ({rounds}); limit {overhead['limit_percent']:.0f} %: {overhead['verdict']}"


def render_table(result: dict) -> str:
    fmt = lambda v, spec: "n/a" if v is None else format(v, spec)
    header = ("config", "precision", "optim", "batch", "padding", "samples/s", "real tok/s", "pad %",
              "3-ep CoLA", "peak MiB", "speed-up", "MFU", "losses vs tutorial")
    lines = []
    for row in result["configs"]:
        padding = row["padding"] + ("+grouped" if row["group_by_length"] else "")
        mfu = None if row["mfu"] is None else row["mfu"] * 100
        speedup = fmt(row["speedup_vs_tutorial"], ".2f") + "x" + ("~" if row.get("resolvable") is False else "")
        lines.append((row["name"], row["precision"], row["optim"], str(row["batch_size"]), padding,
                      fmt(row["samples_per_second"], ".1f"), fmt(row["real_tokens_per_second"], ".0f"),
                      fmt(None if row["padding_fraction"] is None else row["padding_fraction"] * 100, ".1f"),
                      fmt(row["projected_3_epoch_seconds"], ".0f") + " s", fmt(row["peak_allocated_mb"], ".0f"),
                      speedup, "n/a" if mfu is None else f"{mfu:.2f} %", loss_cell(row.get("loss_vs_tutorial"))))
    widths = [max(len(h), *(len(line[i]) for line in lines)) for i, h in enumerate(header)]
    text = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    text += ["  ".join(c.ljust(w) for c, w in zip(line, widths)) for line in lines]
    machine, settings = result["machine"], result["settings"]
    peaks = {row["name"]: row["peak_tflops_assumed"] for row in result["configs"]}
    text.insert(0, f"bench: {settings['model_shape']} shape on {machine['device']['type']} "
                   f"({machine['device']['name']}), {machine['torch_threads']} torch threads, "
                   f"{settings['rounds']} interleaved rounds, {settings['warmup_steps']} warm-up steps + "
                   f">= {settings['min_steps']} steps and >= {settings['seconds']} s timed per run")
    text.append(f"3-ep CoLA: {timing.EPOCHS} x {timing.COLA_TRAIN_ROWS} rows at the median samples/s. "
                "speed-up: median of per-round ratios to the tutorial run. MFU: useful FLOPs (real tokens) / "
                f"peak TFLOPS assumed {peaks}" + (" (n/a: no peak known for this device; --peak-tflops)"
                                                   if not any(peaks.values()) else ""))
    floor = result.get("noise_floor")
    if floor:
        text.append(f"A/A noise floor ({floor['configuration']} vs tutorial, the same script twice per round): "
                    f"+-{floor['percent']:.2f} % (per round {floor['per_round_percent']}); ~ after a speed-up: inside "
                    "it, not resolvable here")
    for overhead in (result.get("kit_overheads") or {}).values():
        text.append(overhead_line(overhead))
    check = result.get("parity")
    if check:
        text.append(f"losses vs tutorial: per-step training loss over {check['steps']} steps on the same model with "
                    f"dropout {check['dropout']} (masks depend on the padded shape), tolerance {check['atol']:g} + "
                    f"{check['rtol']:g}|loss| at every step")
    load = machine["load_average"]
    text.append(f"load average (1 min) at start {load['start'][0]:.2f}, end {load['end'][0]:.2f} "
                f"on {machine['host']['cpu_count']} CPUs")
    return "\n".join(text)


def loss_cell(check: dict | None) -> str:
    if not check:
        return "-"
    if not check.get("compared"):
        return check["reason"].split(":")[0]
    if check["agree"]:
        return f"agree ({check['max_abs_diff']:.0e})"
    return f"DIFFER at step {check['first_step_over']}" if check["first_step_over"] else "n/a"


def parity_check(configs: list[Config], steps: int, device: facade.Device, data_dir: Path, model_dir: Path,
                 workdir: Path) -> dict:
    """Per-step losses of the tutorial and of every configuration with the published math, on a
    dropout-free model, compared step by step with the tutorial's."""
    overrides = {"max_steps": steps, "eval_strategy": "no", "save_strategy": "no"}
    results, reference = {}, None
    for config in configs:
        if config.name == timing.AA_BASELINE:
            continue
        changes = config.math_changes()
        if changes:
            results[config.name] = {"compared": False, "reason": "other math: " + "; ".join(changes)}
            continue
        losses = parity.StepLosses()
        with (workdir / "logs" / f"{config.name}-parity.log").open("w") as log, \
                contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            train(config, device, data_dir, model_dir, workdir / "parity" / config.name, overrides, [losses], True)
        values = losses.values()
        if reference is None:   # the tutorial, first in every list of configurations
            reference = values
            results[config.name] = {"compared": False, "reason": "reference", "losses": values}
        else:
            results[config.name] = {"compared": True, **parity.compare(values, reference), "losses": values}
        verdict = parity.describe(results[config.name]) if results[config.name]["compared"] else "reference"
        print(f"parity  {config.name:<15} {len(values)} steps: {verdict}", flush=True)
    return {"steps": steps, "dropout": 0.0, "reference": timing.BASELINE, "rtol": parity.RTOL, "atol": parity.ATOL,
            "configs": results}


# --------------------------------------------------------------------------- main
def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ["SWANLAB_MODE"] = "offline"          # a benchmark never uploads
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    try:
        return bench(args, sys.argv[1:] if argv is None else argv)
    except KitError as err:
        print(err.render(), file=sys.stderr)
        return err.exit_code


def bench(args: argparse.Namespace, argv: list[str]) -> int:
    if args.threads:
        torch.set_num_threads(args.threads)
        # the recipe chooses its CPU thread count from OMP_NUM_THREADS (recipe/threads.py): say the same there
        os.environ["OMP_NUM_THREADS"] = str(args.threads)
    device = facade.detect_device(args.device)
    configs = configurations(args.variant, args.overhead)
    workdir = args.workdir
    (workdir / "logs").mkdir(parents=True, exist_ok=True)
    data_dir = workload.write_data(workdir / "data", args.train_rows)
    sentences = workload.train_sentences(data_dir)
    model_dir = workload.write_model(workdir / f"model-{args.model_shape}", args.model_shape, sentences)
    lengths, size = workload.token_lengths(model_dir, sentences), workload.model_size(model_dir)
    load_start = os.getloadavg()
    print(f"bench: {[c.name for c in configs]} x {args.rounds} rounds on {device.type} ({device.name}); "
          f"logs in {workdir / 'logs'}", flush=True)
    parity_result = None
    if args.parity_steps:
        still_model = workload.write_model(workdir / f"model-{args.model_shape}-dropout0", args.model_shape,
                                           sentences, dropout=0.0)
        try:
            parity_result = parity_check(configs, args.parity_steps, device, data_dir, still_model, workdir)
        except KitError:
            raise
        except Exception as err:  # noqa: BLE001 - name the phase and its logs
            print(f"bench: the parity check failed: {type(err).__name__}: {err}\n  logs: {workdir / 'logs'}/*-parity.log",
                  file=sys.stderr)
            return EXIT_FAILED
    results = []
    for round_index in range(args.rounds):
        for config in round_order(configs, round_index):
            log_path = workdir / "logs" / f"{config.name}-round{round_index + 1}.log"
            with log_path.open("w") as log:
                try:
                    result = run_once(config, round_index, args, device, data_dir, model_dir, log)
                except KitError:
                    raise
                except Exception as err:  # noqa: BLE001 - name the configuration and its log
                    print(f"bench: {config.name} failed in round {round_index + 1}: {type(err).__name__}: {err}\n"
                          f"  log: {log_path}", file=sys.stderr)
                    return EXIT_FAILED
            results.append(result)
            t = result.timing
            print(f"round {round_index + 1}/{args.rounds}  {config.name:<15} {t.samples_per_second:9.1f} samples/s "
                  f"({t.steps} steps in {t.seconds:.2f} s)  load {os.getloadavg()[0]:.2f}", flush=True)
    rows = summarize(results, configs, lengths, size, device.name, args.peak_tflops, parity_result)
    floor = noise_floor(results)
    overheads = kit_overheads(results, configs, floor)
    result = {
        "schema": SCHEMA, "finished_at": record.now_iso(),
        "machine": {"device": device.as_record(), "host": facade.host_record(),
                    "versions": compat.framework_versions(), "torch_threads": torch.get_num_threads(),
                    "load_average": {"start": [round(v, 2) for v in load_start],
                                     "end": [round(v, 2) for v in os.getloadavg()]}},
        "settings": {"model_shape": args.model_shape, "rounds": args.rounds, "warmup_steps": args.warmup_steps,
                     "min_steps": args.min_steps, "seconds": args.seconds, "train_rows": args.train_rows,
                     "swanlab": not args.no_swanlab, "overhead": args.overhead, "command": [sys.executable, "-m", "bench", *argv]},
        "workload": {"model": size, "real_tokens_per_sample": round(sum(lengths) / len(lengths), 2),
                     "max_tokens": max(lengths), "projection_rows": timing.COLA_TRAIN_ROWS,
                     "projection_epochs": timing.EPOCHS},
        "configs": rows,
        "noise_floor": floor,
        "kit_overheads": overheads,
        "kit_overhead": overheads.get("published"),   # kit.bench/1's key, read by the device check
        "parity": None if parity_result is None else {k: v for k, v in parity_result.items() if k != "configs"},
    }
    json_path = args.json or workdir / "bench.json"
    record.write_json_atomic(json_path, result)
    print(render_table(result))
    print(f"json: {json_path}")
    return 0
