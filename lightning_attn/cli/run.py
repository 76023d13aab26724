"""The commands that train and measure: ``train``, ``evaluate``, ``sweep``, ``compare``, ``benchmark``. Each takes
the parsed arguments and returns the exit code; bad input raises :class:`~lightning_attn.config.ConfigError`."""

from __future__ import annotations

import argparse
import os
import sys

from ..config import ConfigError, compose, default_choice, parse_seeds, to_yaml
from ..processes import EXIT_FAILED
from ..tracking import mask_secrets

# --slurm's options that have no default (None when not given)
SLURM_OPTIONAL = ("timeout_min", "partition", "gpus_per_node", "cpus_per_task", "mem_gb", "slurm_param")


def train(args: argparse.Namespace) -> int:
    cfg = None if args.resume else compose(args.overrides)
    if args.print_config:
        if cfg is None:
            raise ConfigError("--print-config composes a new run's config; a resumed run's is its config.yaml artifact")
        print(mask_secrets(to_yaml(cfg)), end="")
        return 0
    from ..data import DataError
    from ..processes import stops_at_safe_points
    from ..saved_runs import RunRecordError
    from ..tracking.stability import DivergedError
    from ..train import resume, train, train_seeds

    try:
        # Ctrl+C or a scheduler's SIGTERM stops training at the next batch boundary, the run marked KILLED
        with stops_at_safe_points():
            if cfg is None:
                result = resume(args.resume, args.overrides)
            elif cfg.seeds:
                return print_seeds(train_seeds(cfg))
            else:
                result = train(cfg)
    except (DataError, RunRecordError) as e:
        raise ConfigError(str(e)) from None
    except DivergedError as e:  # an outcome, not a bug: recorded as FAILED with this reason
        print(f"error: {e} (the MLflow run is marked FAILED with this reason)", file=sys.stderr)
        return EXIT_FAILED
    metric_line = ", ".join(f"{k} {v:.2f}" for k, v in sorted(result.metrics.items()) if k.startswith("test/"))
    print(f"\nrun {result.run_id}: {metric_line}")
    if result.stop_reason:
        hint = "" if result.metrics.get("run/converged") else "; raise trainer.max_epochs to train to convergence"
        print(f"training ended: {result.stop_reason}{hint}")
    if not args.no_model and cfg is not None:
        from ..served import log_trained

        if model := log_trained(cfg.task.name, result, cfg.data.kind):
            print(f"MLflow model:   {model}")
    print(f"tracking store: {mask_secrets(result.tracking_uri)}")
    print(f"see it with:    lightning-attn ui --tracking-uri '{mask_secrets(result.tracking_uri)}'")
    return 0


def log_model(args: argparse.Namespace) -> int:
    from ..saved_runs import RunRecordError
    from ..served import log_model

    try:
        uri = log_model(args.run_id, tracking_uri=args.tracking_uri)
    except RunRecordError as e:
        raise ConfigError(str(e)) from None
    print(f"MLflow model: {uri}  (mlflow models serve -m {uri} --env-manager local)")
    return 0


def sweep(args: argparse.Namespace) -> int:
    from ..sweep import load

    return run_or_submit(load(args.file, args.overrides), args)


def run_or_submit(spec, args: argparse.Namespace) -> int:
    """Run the sweep here, or (``--slurm``) submit its hosts as a job array."""
    from ..sweep.launch import STORAGE_ENV

    storage = args.storage or os.environ.get(STORAGE_ENV)
    slurm_only = {
        "--array": args.array != 1,
        "--wait": args.wait,
        "--slurm-executor": args.slurm_executor != "slurm",
        **{f"--{k.replace('_', '-')}": getattr(args, k) is not None for k in SLURM_OPTIONAL},
    }
    given = [flag for flag, set_ in slurm_only.items() if set_]
    if given and not args.slurm:
        raise ConfigError(f"{', '.join(given)}: options of a Slurm submission; add --slurm")
    if not args.slurm:
        from ..sweep import run_sweep

        return run_sweep(
            spec,
            folder=args.out,
            storage=storage,
            devices=args.devices,
            ddp=args.ddp,
            resume=args.resume,
            join=args.join,
            dry=args.dry_run,
            command=["lightning-attn", *sys.argv[1:]],
        )
    from ..sweep.slurm import SlurmOptions, parse_parameters, submit

    if args.join:
        raise ConfigError("--slurm submits every host of the sweep: drop --join (--resume continues a sweep)")
    options = SlurmOptions(
        timeout_min=args.timeout_min,
        array=args.array,
        partition=args.partition,
        gpus_per_node=args.gpus_per_node,
        cpus_per_task=args.cpus_per_task,
        mem_gb=args.mem_gb,
        parameters=parse_parameters(args.slurm_param),
        executor=args.slurm_executor,
        wait=args.wait,
    )
    return submit(
        spec,
        options,
        folder=args.out,
        storage=storage,
        devices=args.devices,
        ddp=args.ddp,
        resume=args.resume,
        dry=args.dry_run,
    )


def compare(args: argparse.Namespace) -> int:
    from ..sweep.spec import comparison

    task, mechanisms, seeds, overrides = default_choice("task"), [], [0, 1, 2], []
    for item in args.overrides:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"cannot read {item!r}: expected key=value (e.g. attention=soft,hard seeds=0-4)")
        if key == "task":
            task = value
        elif key == "attention":
            mechanisms = [m.strip() for m in value.split(",") if m.strip()]
        elif key == "seeds":
            seeds = parse_seeds(value)
        else:
            overrides.append(item)
    if not mechanisms:
        raise ConfigError("name the mechanisms to compare: attention=soft,hard,uniform")
    spec = comparison(
        task,
        mechanisms,
        seeds,
        overrides,
        args.name,
        until_decided=args.until_decided,
        max_seeds=args.max_seeds,
        speed_pass=not args.no_speed_pass,
    )
    return run_or_submit(spec, args)


def print_seeds(result) -> int:
    """The seeds' statistics; exit 1 when no seed finished (the first failure's reason in one line), 0 when some
    did (the failed ones counted in one line)."""
    if result.failures:
        seed, why = next(iter(result.failures.items()))
        total = len(result.failures) + len(result.runs)
        if not result.runs:
            print(f"error: no seed finished ({total} failed); the first, seed {seed}: {why}", file=sys.stderr)
            return EXIT_FAILED
        print(
            f"warning: {len(result.failures)} of {total} seed(s) failed; the first, seed {seed}: {why}", file=sys.stderr
        )
    print(f"\nparent run {result.parent_run_id} ({len(result.runs)} seeds):")
    for key, st in result.stats.items():
        if key.startswith("test/"):
            std = f", std {st.std:.2f}" if st.n > 1 else ""
            print(f"  {key:<20} {st.describe()}{std}")
    print(f"tracking store: {mask_secrets(result.tracking_uri)}")
    print(f"see it with:    lightning-attn ui --tracking-uri '{mask_secrets(result.tracking_uri)}'")
    return 0


def evaluate(args: argparse.Namespace) -> int:
    from ..evaluate import EvaluateError, evaluate

    try:
        result = evaluate(args.run_id, args.overrides, args.tracking_uri)
    except EvaluateError as e:
        raise ConfigError(str(e)) from None
    scores = ", ".join(f"{k} {v:.2f}" for k, v in sorted(result.metrics.items()) if k.startswith("test/"))
    print(f"\nrun {result.run_id} on {result.evaluated}: {scores}")
    if result.signature:
        print(f"sacreBLEU signature: {result.signature}")
    print(f"logged to child run {result.child_run_id} (scores, predictions/test.hyp.txt)")
    return 0


def predict(args: argparse.Namespace) -> int:
    from ..predict import check_beam, image_files, predict
    from ..saved_runs import RunRecordError

    check_beam(args.beam)  # before waiting on standard input
    if args.images and args.input:
        raise ConfigError("give --input FILE or --images PATH…, not both")
    try:
        inputs = image_files(args.images) if args.images else _lines(args.input)
        found = predict(args.run_id, inputs, beam=args.beam, overrides=args.overrides, tracking_uri=args.tracking_uri)
    except RunRecordError as e:
        raise ConfigError(str(e)) from None
    if args.images:  # which caption is whose
        found = [f"{name}\t{caption}" for name, caption in zip(inputs, found)]
    out = "".join(f"{line}\n" for line in found)
    if args.output is None:
        sys.stdout.write(out)
        return 0
    partial = args.output.with_name(f".{args.output.name}.partial")  # complete or absent, never half written
    partial.write_text(out, encoding="utf-8")
    partial.replace(args.output)
    print(f"{len(found)} output(s) in {args.output}", file=sys.stderr)
    return 0


def _lines(path) -> list[str]:
    """The lines of ``path``, else of standard input."""
    try:
        return (path.read_text(encoding="utf-8") if path else sys.stdin.read()).splitlines()
    except (OSError, UnicodeDecodeError) as e:
        raise ConfigError(f"--input {path or '-'}: cannot read ({e})") from None


def benchmark(args: argparse.Namespace) -> int:
    from .. import speedpass
    from ..tracking import check_tracking_store, resolve_tracking_uri

    if args.what == "sizes":
        sizes = tuple(int(n) for n in args.sizes.split(",")) if args.sizes else speedpass.sizes.SIZES
        try:
            result = speedpass.measure_sizes(
                tasks=args.task,
                mechanisms=args.mechanism,
                sizes=sizes,
                reference=args.reference or "soft",
                rounds=args.rounds or 11,
                threads=args.threads,
                device=args.device,
                overrides=args.overrides,
            )
        except ValueError as e:
            raise ConfigError(str(e)) from None
        args.out.mkdir(parents=True, exist_ok=True)
        (args.out / "sizes.json").write_text(result.to_json(), encoding="utf-8")
        text = []
        for task in result.exponents:
            text += [f"## {task}", "", result.table(task), "", *(f"- {line}" for line in result.sentences(task)), ""]
        (args.out / "sizes.md").write_text("\n".join(text), encoding="utf-8")
        picture = speedpass.plot(result, args.out / "sizes.png")
        print("\n".join(text))
        for path in (args.out / "sizes.json", args.out / "sizes.md", picture):
            print(f"wrote {path.resolve()}")
        return 0
    uri = resolve_tracking_uri(args.tracking_uri)
    check_tracking_store(uri)
    if not args.experiment and not args.run:
        raise ConfigError("say what to time: --experiment NAME or --run RUN_ID (repeatable)")
    try:
        passes = speedpass.measure_runs(
            tracking_uri=uri,
            experiments=args.experiment or [],
            run_ids=args.run or [],
            reference=args.reference,
            rounds=args.rounds or 30,
            threads=args.threads,
            steps=args.steps,
            batch=args.batch,
            device=args.device,
            log_to_mlflow=not args.no_log,
        )
    except LookupError as e:
        raise ConfigError(str(e)) from None
    for result in passes:
        print(
            f"\n{result.task}: side by side, {result.settings['rounds']} interleaved rounds, "
            f"{result.settings['threads']} threads, {result.settings['device']}"
        )
        print("\n".join(f"  {line}" for line in result.lines()))
    return 0
