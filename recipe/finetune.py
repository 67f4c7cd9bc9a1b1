"""Fine-tune BERT on CoLA: the tutorial's recipe, one script for NPU, CUDA and CPU.

Reads top to bottom like the tutorial: data -> tokenizer -> model -> TrainingArguments ->
metrics -> tracking -> Trainer.train() -> save. Every device/framework difference is behind
recipe.facade. Run `python -m recipe.finetune --help`.
"""

from __future__ import annotations

import argparse
import shlex
import signal
import sys
from dataclasses import dataclass
from pathlib import Path

from torch.distributed.elastic.multiprocessing.errors import record as record_uncaught_for_torchrun

from recipe import (
    callbacks,
    compat,
    console,
    data,
    distributed,
    energy,
    equivalence,
    facade,
    hub,
    metrics,
    model,
    monitor,
    parity,
    record,
    rundir,
    threads,
    tracking,
)
from recipe import config as kit_config
from recipe import trace as kit_trace
from recipe.errors import KitError

REPO_ROOT = Path(__file__).resolve().parent.parent


@dataclass
class RunContext:
    """What one run decided before training: the manifest is written from it, the summary read against it."""
    args: argparse.Namespace
    config: dict
    device: facade.Device
    api: str
    batch: dict                    # distributed.plan_batch: per-device, global, accumulation
    data_info: object = None       # data.DataInfo
    training_args: object = None   # the TrainingArguments the Trainer got
    tracking_mode: str = "disabled"
    run_id: str = ""
    thresholds: dict | None = None
    resume_from: str | None = None
    train_rows: int = 0
    real_tokens_per_sample: float = 0.0

    @property
    def output(self) -> Path:
        return self.args.output


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m recipe.finetune", description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog="exit codes: 0 ok, 2 usage, 3 config, 4 data, 5 model, 6 device, 7 output, "
                                            "130/143 stopped by SIGINT/SIGTERM after saving a checkpoint (--resume)")
    parser.add_argument("--profile", default="smoke",
                        help=f"profile name ({', '.join(kit_config.available_profiles())}) or a YAML file")
    parser.add_argument("--output", required=True, type=Path, help="run directory for the run record")
    parser.add_argument("--device", default="auto", choices=("auto", *facade.DEVICE_TYPES))
    parser.add_argument("--api", default="auto", choices=facade.API_CHOICES,
                        help="auto: openmind on an NPU when it imports, else transformers")
    parser.add_argument("--data", help="data source (overrides the profile): smoke, glue-cola, a hub id or a path")
    parser.add_argument("--model", help="model (overrides the profile): bert-base-cased, tiny-bert, a hub id or a dir")
    parser.add_argument("--seed", type=int, help="random seed (train.seed)")
    parser.add_argument("--epochs", type=float, help="train.num_train_epochs")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="override any profile setting, e.g. --set train.learning_rate=3e-5 (repeatable)")
    parser.add_argument("--threshold", action="append", default=[], metavar="METRIC=VALUE",
                        help="judge the run by these final-metric minimums, e.g. --threshold accuracy=0.7 (repeatable; "
                             "default: the profile's published ones, only for the model and data they were set for)")
    parser.add_argument("--no-swanlab", action="store_true", help="turn SwanLab tracking off")
    parser.add_argument("--resume", action="store_true", help="continue from the last checkpoint in --output")
    parser.add_argument("--overwrite", action="store_true", help="delete a previous run in --output first")
    parser.add_argument("--trace", type=kit_trace.step_count, default=0, metavar="N",
                        help="profile N training steps after a short warm-up into <output>/trace/")
    return parser.parse_args(argv)


def resolve_config(args: argparse.Namespace) -> dict:
    overrides = list(args.set)
    for flag, key in (("data", "data"), ("model", "model"), ("seed", "train.seed"),
                      ("epochs", "train.num_train_epochs")):
        if getattr(args, flag) is not None:   # --epochs 3 is the profile's 3, not 3.0
            overrides.append(f"{key}={kit_config.canonical(getattr(args, flag))}")
    profile = kit_config.load_profile(args.profile)
    config = kit_config.apply_overrides(profile, overrides)
    if (config["model"], config["data"]) != (profile["model"], profile["data"]):   # say what runs, not the profile
        config["description"] = (f"{config['profile']}'s settings on model {config['model']} and data "
                                 f"{config['data']} (the profile itself: {profile['model']} on {profile['data']})")
    return config


def prepare_output(output: Path, resume: bool, overwrite: bool, config: dict, main: bool = True):
    """Claim the run directory (rank 0; refuses to mix runs) -> (claim or None, checkpoint to resume
    from or None). Only rank 0 chooses the checkpoint: run() shares its choice with the others."""
    if not main:
        return None, None   # under torchrun only rank 0 checks the run directory: the others would race it
    claim = rundir.claim(output, resume, overwrite, config)
    resume = resume and not overwrite   # --overwrite wins: its run starts afresh
    found = rundir.last_checkpoint(output) if resume else None
    if resume and not found:
        print(f"note: no checkpoint under {output / 'checkpoints'}; starting from scratch", file=sys.stderr)
    return claim, found


def run(args: argparse.Namespace, extra_callbacks: tuple = ()) -> int:
    """Train and record one run; `extra_callbacks` lets bench/ time the very same Trainer. A run
    that fails before training leaves its output directory exactly as it found it."""
    claims: list = []   # the run directory's claim, once train() took it (rank 0)
    try:
        return train(args, extra_callbacks, claims)
    except BaseException as err:
        for claim in claims:
            if not claim.committed:
                claim.rollback()
        full = rundir.disk_full(err, args.output)
        if full is not None:
            raise full from None
        raise
    finally:
        for claim in claims:
            claim.release()


def train(args: argparse.Namespace, extra_callbacks: tuple, claims: list) -> int:
    config = resolve_config(args)
    user_thresholds = kit_config.parse_thresholds(args.threshold)
    train_settings, tokenize = dict(config["train"]), config.get("tokenize", {})
    seed = int(train_settings.get("seed", 42))
    device = facade.detect_device(args.device)
    idle_device_mb = facade.device_idle_used_mb(device)   # before this run puts anything on the card
    api = facade.choose_api(args.api, device)
    classes = facade.trainer_api(api)
    output = args.output
    main, world = distributed.is_main(), distributed.world_size()
    out = console.Console(main)   # only rank 0 prints; libraries keep their bars and dicts to themselves
    out.say(f"profile {config['profile']} | device {device.type} ({device.name}) | api {api} | output {output}")
    train_settings, notes = facade.resolve_speed_settings(train_settings, config.get("precision"), device)
    for note in notes:
        out.say(f"note: {note}")
    if config.get("deterministic"):   # parity profile: before any kernel runs or HCCL starts
        out.say(f"note: deterministic algorithms: {facade.enable_determinism(device)}")
    train_settings, batch = distributed.plan_batch(train_settings, world)   # same global batch on any world size
    if batch["adjusted"]:
        out.say(f"note: {batch['adjusted']}")
    ctx = RunContext(args, config, device, api, batch)
    kit_config.check_types(classes.TrainingArguments, train_settings, "train")   # a wrong type fails here
    compat.compatible_training_settings(classes.TrainingArguments, train_settings)   # a typo fails here
    if config["model"] != model.TINY:
        model_source = model.resolve_model_source(str(config["model"]), api)   # a missing dir fails here
    thread_record = threads.apply(device.type, config.get("threads"), distributed.local_world_size())
    # every setting is valid: claim the directory. Until training starts, files go to its staging
    # folder; only then may --overwrite delete the previous run (claim.commit below)
    claim, ctx.resume_from = prepare_output(output, args.resume, args.overwrite, config, main)
    claims += [claim] if claim else []
    scratch = claim.staging if claim else distributed.scratch_dir(output)   # other ranks write nothing there

    # 1. data: GLUE CoLA (or a local/generated copy in the same format)
    dataset, ctx.data_info = data.load_cola(str(config["data"]), api, scratch / "data", config.get("smoke_data"))

    # 2. tokenizer: truncation + padding to max_length (or per batch when padding: dynamic)
    import transformers
    transformers.set_seed(seed)  # before the model: the classification head is initialised at load
    if config["model"] == model.TINY:
        model_source = str(model.write_tiny_bert(scratch / "tiny-model", dataset["train"]["sentence"],
                                                 config.get("tiny_model"), tokenize["max_length"],
                                                 config.get("num_labels", 2)))
    fingerprint = {**model.fingerprint(model_source), "source": str(claim.final(model_source)) if claim else model_source}
    tokenizer = model.load_tokenizer(classes, model_source)
    padding = "max_length" if tokenize.get("padding", "max_length") == "max_length" else False

    def tokenize_batch(batch):
        return tokenizer(batch["sentence"], truncation=tokenize.get("truncation", True),
                         padding=padding, max_length=tokenize["max_length"])

    tokenized = dataset.map(tokenize_batch, batched=True, remove_columns=["sentence", "idx"])
    ctx.train_rows = len(tokenized["train"])
    ctx.real_tokens_per_sample = sum(sum(m) for m in tokenized["train"]["attention_mask"]) / ctx.train_rows

    # 3. model: BERT with a 2-way classification head
    net = model.load_model(classes, model_source, config.get("num_labels", 2), dropout=config.get("dropout"))

    # 4. TrainingArguments (the profile's `train:` section, names as in current transformers)
    ctx.training_args = training_args = compat.training_arguments(classes.TrainingArguments, {
        "output_dir": str(output / "checkpoints"), "report_to": "none",
        **facade.device_training_settings(device, world), **train_settings})
    distributed.check_world(training_args.world_size)
    # rank 0's choice: every rank resumes the same step
    ctx.resume_from = resume_from = distributed.share_from_main(ctx.resume_from)
    if claim:
        claim.commit(args.overwrite)   # training starts: the old run goes, the staged files move in

    # 5. metrics: accuracy (the tutorial's) and MCC (CoLA's official metric)
    compute_metrics = metrics.make_compute_metrics(api)

    # 6. tracking: SwanLab, offline into the run directory unless the user asked for the cloud
    ctx.tracking_mode, warning = tracking.choose_mode(enabled=not args.no_swanlab and main)   # rank 0 logs for all
    if warning:
        out.warn(warning)
    ctx.run_id = run_id = f"{record.now_iso().replace(':', '').replace('-', '')[:15]}Z-{config['profile']}-{device.type}"
    swanlab_callback = tracking.make_callback(ctx.tracking_mode, output,
                                              config.get("tracking", {}).get("project", "cola-repro-kit"), run_id,
                                              config)
    if swanlab_callback:
        out.say(tracking.describe(ctx.tracking_mode, output))
        out.quiet(swanlab_callback)   # SwanLab's own lines go to console.log

    # 7. train, with the run record written alongside
    run_record = record.RunRecord(output, enabled=main)
    out.attach(output)   # from here on, what is printed also goes to <run>/console.log
    resume_step = int(Path(resume_from).name.split("-")[-1]) if resume_from else None
    ctx.thresholds = record.choose_thresholds(config["profile"], identity(config["model"]), identity(config["data"]),
                                          user_thresholds)
    dropped = run_record.start({**manifest(ctx), "threads": thread_record, "model_fingerprint": fingerprint},
                               resume_step, resume_from)
    for problem in dropped:   # a resume rewrites metrics.jsonl from its good lines (recipe/record.py)
        out.warn(f"{problem}; dropped from the record by --resume")
    earlier = [line for line in record.read_metrics(output) if line.get("kind") != "epoch"]
    stop = callbacks.StopOnSignal()
    recorder = callbacks.RecordCallback(run_record, device, elapsed_offset=earlier[-1]["elapsed_s"] if earlier else 0.0,
                                        stop=stop)
    tokens = callbacks.TokenCounter(net)
    # beyond the tutorial (docs/parity.md): start weights + sample order, energy, optional profiler trace
    parity_recorder = parity.ParityCallback(net, tokenized["train"], batch["global"])
    energy_meter = facade.energy_meter(device)
    tracer = kit_trace.TraceCallback(args.trace, output, device) if args.trace and main else None
    collator = transformers.DataCollatorWithPadding(tokenizer)
    trainer = classes.Trainer(model=net, args=training_args, train_dataset=tokenized["train"],
                              eval_dataset=tokenized["validation"], data_collator=collator,
                              compute_metrics=compute_metrics,
                              callbacks=[parity_recorder, recorder]   # parity first: it un-rounds the logged loss
                              + ([swanlab_callback] if swanlab_callback else [])
                              + list(extra_callbacks)
                              + [energy_meter] + ([tracer] if tracer else []) + [stop])
    recorder.time_checkpoints(trainer)   # checkpoint writes are timed apart from training
    out.take_over(trainer, device, clock=recorder)   # one bar per phase and a line per epoch instead of the Trainer's dicts
    facade.reset_peak_memory(device)
    # one thread reads the device tool once per tick, for memory and (npu) the energy meter's power
    with monitor.DeviceMonitor(device, energy_meter, baseline_mb=idle_device_mb) as sampler, stop:
        trainer.train(resume_from_checkpoint=resume_from)
    after_training = {}   # seconds of what follows the training loop: never part of train_seconds
    started = facade.monotonic()
    with out.captured():
        tracking.finish(swanlab_callback)
    after_training["tracking_finish"] = round(facade.monotonic() - started, 3)
    # saving, the ranks' last agreement and the record take seconds: a hang there must not hold the job
    with distributed.end_of_run_watchdog():
        if stop.stopped_at is not None:
            return interrupted(stop, run_record, output, out)

        # 8. save the fine-tuned model and the result
        started = facade.monotonic()
        trainer.save_model(str(output / "model"))   # the Trainer saves on the main process only
        if main:
            tokenizer.save_pretrained(str(output / "model"))
        after_training["save_model"] = round(facade.monotonic() - started, 3)
        # every rank's memory and token counts; returns only when every rank got here (else: no summary)
        reports = distributed.gather_from_all_ranks({**rank_report(device, sampler, tokens),
                                                     "energy": energy_meter.as_record()})
        if not main:
            return 0
        steps_per_epoch = recorder.batches_per_epoch // training_args.gradient_accumulation_steps
        summary = summarize(ctx, recorder, reports, (trainer.state.global_step, steps_per_epoch))
        summary["timing"] = timing_record(recorder, after_training, traced=tracer is not None)
        summary.update(parity=parity_recorder.as_record(),
                       energy=energy.merge([r["energy"] for r in reports],
                                           parity_recorder.samples_trained or summary["train_samples"]),
                       trace=tracer.as_record() if tracer else None)
        summary.update(equivalence.compare(config, train_settings, world))   # what differs from published, and why
        run_record.finish(summary)
        out.say(summary_line(summary, output))
        out.close()
        return 0


def model_identity(source: str) -> str | None:
    """The manifest's `identity.model`: the tutorial's name of a hub id or `make fetch` folder, or
    the kit's tiny BERT (built from the config: its weights follow the seed); None for other models."""
    return model.TINY if source == model.TINY else hub.logical_name(source)


def identity(source: str) -> str:
    """The tutorial's logical name of a model/data source (a hub id or `make fetch` dir of it), else itself."""
    return hub.logical_name(source) or source


def resume_command(argv: list[str]) -> str:
    """The exact command that continues this run."""
    args = [a for a in argv if a != "--overwrite"]
    return shlex.join(["python", "-m", "recipe.finetune", *args, *([] if "--resume" in args else ["--resume"])])


def interrupted(stop, run_record, output: Path, out) -> int:
    """A signal stopped training after the Trainer saved a checkpoint: record it, say how to go on."""
    checkpoint = rundir.last_checkpoint(output) if run_record.enabled else None
    command = resume_command(sys.argv[1:])
    run_record.interrupted({"signal": signal.Signals(stop.signum).name,
                            "step": stop.stopped_at, "checkpoint": Path(checkpoint).name if checkpoint else None,
                            "resume_command": command})
    if run_record.enabled:
        where = "torchrun with the same options and " if distributed.world_size() > 1 else ""
        out.say(f"interrupted: stopped at step {stop.stopped_at}, checkpoint {checkpoint}\n"
                f"  resume with {where}this command: {command}", sys.stderr)
    out.close()
    # no rank exits before rank 0 wrote the record: torchrun stops the others when one fails
    distributed.gather_from_all_ranks({})
    return stop.exit_code


def rank_report(device, sampler, tokens) -> dict:
    """What this process measured, for rank 0's summary."""
    return {"rank": distributed.rank(), "host": facade.host_record()["hostname"], "device": device.torch_device,
            **facade.allocator_peaks_mb(device), **sampler.as_record(),
            "host_rss_mb_peak": distributed.host_rss_peak_mb(),
            "real_tokens": tokens.real_tokens, "total_tokens": tokens.total_tokens}


def manifest(ctx: RunContext) -> dict:
    args = ctx.training_args
    world_size = max(int(getattr(args, "world_size", 1) or 1), 1)
    return {
        "run_id": ctx.run_id, "started_at": record.now_iso(), "command": [sys.executable, "-m", "recipe.finetune",
                                                                         *sys.argv[1:]],
        "host": facade.host_record(), "git_sha": record.git_sha(REPO_ROOT), "versions": compat.framework_versions(),
        "device": ctx.device.as_record(), "api": ctx.api, "profile": ctx.config["profile"], "config": ctx.config,
        "config_sha256": kit_config.config_sha256(ctx.config), "data": ctx.data_info.as_record(),
        # what was trained on, wherever it lay: compare judges runs by this, never by the paths
        "identity": {"model": model_identity(str(ctx.config["model"])),
                     "data": hub.logical_name(str(ctx.config["data"]))},
        "cpu_binding": threads.cpu_binding(),
        "world_size": world_size,
        "effective_batch": args.per_device_train_batch_size * world_size * args.gradient_accumulation_steps,
        "batch": ctx.batch,
        # what the device made of the profile's precision/optimizer choices (fast: bf16 on cuda/npu only)
        "effective": {"precision": "bf16" if args.bf16 else "fp16" if args.fp16 else "fp32",
                      "optim": str(getattr(args.optim, "value", args.optim))},
        "distributed": distributed.manifest_record(facade.distributed_backend(ctx.device.type), args.ddp_timeout),
        "tracking": {"swanlab_mode": ctx.tracking_mode,
                     "logdir": tracking.LOG_DIR_NAME if ctx.tracking_mode != "disabled" else None},
        "thresholds": ctx.thresholds,
    }


def samples_trained(steps: int, steps_per_epoch: int, rows: int, global_batch: int) -> int:
    """Training samples behind `steps` optimizer steps: whole epochs of `rows`, then full batches.
    What ran, whatever stopped it (epochs, max_steps or a signal), resumed steps included."""
    epochs, partial = divmod(steps, max(steps_per_epoch, 1))
    return epochs * rows + min(partial * global_batch, rows)


def summarize(ctx: RunContext, recorder, reports, trainer_steps: tuple[int, int]) -> dict:
    """The run's summary.json: final metrics, verdict, time, throughput, memory (every rank)."""
    logged = record.load_record(ctx.output)   # the metrics lines by kind (the summary is not written yet)
    evals = logged.evals
    eval_seconds = round(sum(line.get("eval_runtime_s") or 0.0 for line in evals), 3)
    checkpoint_seconds = round(sum(line.get("seconds") or 0.0 for line in logged.checkpoints), 3)
    wall = recorder.loop_seconds()   # the training loop only: what follows it is timed apart
    train_seconds = round(max(wall - eval_seconds - checkpoint_seconds, 1e-9), 3)
    samples = samples_trained(*trainer_steps, ctx.train_rows, ctx.batch["global"])
    final = evals[-1] if evals else {}
    final_metrics = {k: final.get(k) for k in ("accuracy", "mcc", "eval_loss", "epoch")} if final else {}
    verdict, verdict_reason = record.verdict(final_metrics, ctx.thresholds)
    real_tokens, total_tokens = (sum(r[key] for r in reports) for key in ("real_tokens", "total_tokens"))
    padding_fraction = (1 - real_tokens / total_tokens) if total_tokens else None
    return {
        "train_seconds": train_seconds, "eval_seconds": eval_seconds, "checkpoint_seconds": checkpoint_seconds,
        "wall_seconds": wall,
        "epoch_seconds": [line["seconds"] for line in logged.epochs],
        "train_samples": samples, "samples_per_second": round(samples / train_seconds, 3),
        "real_tokens_per_second": round(samples * ctx.real_tokens_per_sample / train_seconds, 1),
        "padding_fraction": None if padding_fraction is None else round(padding_fraction, 4),
        "memory": distributed.merge_memory(reports),
        "final": {k: final.get(k) for k in ("accuracy", "mcc", "eval_loss", "epoch")},
        "evals": len(evals), "thresholds": ctx.thresholds["limits"], "verdict": verdict,
        "verdict_reason": verdict_reason,
        "resumed_from": Path(ctx.resume_from).name if ctx.resume_from else None,
    }


TRAIN_SECONDS_MEANS = ("the training loop (Trainer on_train_begin to on_train_end, device synchronized at both "
                       "ends) minus evaluation (eval_seconds) and checkpoint writes (checkpoint_seconds); forward, "
                       "backward, optimizer steps, data loading and per-step logging (SwanLab included) are in it; "
                       "saving the final model and finishing tracking are not (after_training_seconds)")


def timing_record(recorder, after_training: dict, traced: bool) -> dict:
    """The summary's `timing`: what train_seconds includes, what was timed apart, and whether this
    run's time may be compared with another's (a profiler trace slows the steps it records)."""
    return {"train_seconds_means": TRAIN_SECONDS_MEANS,
            "checkpoints_timed": recorder.checkpoints_timed,
            "after_training_seconds": after_training,
            "comparable": not traced,
            "not_comparable_because": "a --trace run: the profiler slows the steps it records" if traced else None}


def summary_line(summary: dict, output: Path) -> str:
    final, memory = summary["final"], summary["memory"]
    peak = (f"{memory['peak_allocated_mb']:.0f} MiB allocated" if memory["peak_allocated_mb"] is not None
            else f"{memory['host_rss_mb_peak']:.0f} MiB host RSS" if memory.get("host_rss_mb_peak") else "n/a")
    fmt = lambda v: "n/a" if v is None else f"{v:.4f}"
    limits = " (" + ", ".join(f"{k} >= {v}" for k, v in summary["thresholds"].items()) + ")" \
        if summary["thresholds"] else ""
    return (f"done: accuracy {fmt(final['accuracy'])}  MCC {fmt(final['mcc'])}  "
            f"train {summary['train_seconds']:.1f} s  peak memory {peak}  "
            f"verdict {summary['verdict'].upper()}{limits}  record: {output}"
            + (f"\n  verdict n/a: {summary['verdict_reason']}" if summary["verdict"] == "n/a" else ""))


@record_uncaught_for_torchrun   # under torchrun, a rank's traceback goes into torchrun's failure report
def main(argv: list[str] | None = None, extra_callbacks: tuple = ()) -> int:
    """The command line. Under torchrun it does not return: once its part of the record is written
    the process ends without the interpreter's teardown (distributed.leave)."""
    args = parse_args(argv)
    try:
        code = run(args, extra_callbacks)
    except KitError as err:
        print(err.render(), file=sys.stderr)
        code = err.exit_code
    except KeyboardInterrupt as err:   # a second SIGINT/SIGTERM, or Ctrl-C before training
        print(f"\nstopped at once ({err or 'interrupted'}): no checkpoint was saved for this step; "
              f"resume from the last one with: {resume_command(sys.argv[1:] if argv is None else argv)}",
              file=sys.stderr)
        code = 128 + signal.SIGINT
    distributed.leave(code)
    return code


if __name__ == "__main__":
    sys.exit(main())
