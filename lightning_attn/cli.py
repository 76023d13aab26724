"""``lightning-attn``: the command line.

    lightning-attn train [group=choice ...] [dotted.key=value ...]
    lightning-attn train --print-config attention=hard     # show the composed config, train nothing
    lightning-attn train --resume RUN_ID [dotted.key=value ...]   # continue a stopped run where it ended
    lightning-attn evaluate RUN_ID [split=NAME | src=FILE ref=FILE] [dotted.key=value ...]
    lightning-attn config                                  # the groups and their choices
    lightning-attn sweep FILE [--devices …] [--storage URL] [--resume | --join]
    lightning-attn compare attention=soft,hard seeds=0-4 [--devices …] [--resume]   # no tuning
    lightning-attn report | ui | server                    # compare; look; host MLflow for several hosts

Exit codes (the table in docs/training.md): 0 done; 1 failed (a run failed, no seed or no trial completed, a sweep
ended with budget left, nothing to report); 2 bad input — an unknown key or choice, a wrong type, missing
or malformed data, a device this machine does not have — one ``error:`` line, before anything is
written; 3 an MLflow store or Optuna storage that cannot be reached, one line naming it (password
masked); 128 + the signal number when a signal stopped the command.
"""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from . import console
from .config import EXPERIMENT, GROUP_NAMES, ConfigError, compose, default_choice, group_choices, to_yaml
from .plugins import load_plugins
from .tracking import database_url, mask_secrets
from .tracking.mlflow import LOOPBACK, server_allowed_hosts
from .tracking.secrets import register_url

EXIT_BAD_INPUT = 2
EXIT_UNREACHABLE = 3
EXIT_FAILED = 1
# `lightning-attn server`'s stores when none is named (in the folder it starts in)
SERVER_DB, SERVER_ARTIFACTS = "mlflow-server.db", "mlartifacts"
# --slurm's options that have no default (None when not given)
SLURM_OPTIONAL = ("timeout_min", "partition", "gpus_per_node", "cpus_per_task", "mem_gb", "slurm_param")


def _groups_help() -> str:
    lines = ["config groups (pick with group=choice):"]
    for group in (*GROUP_NAMES, EXPERIMENT):
        lines.append(f"  {group:<10} {', '.join(group_choices(group)) or '(none)'}")
    return "\n".join(lines)


def _train_epilog() -> str:
    return (
        _groups_help() + "\n\nexamples:\n  lightning-attn train attention=hard trainer.max_epochs=3\n"
        "  lightning-attn train --resume RUN_ID trainer.max_epochs=20   # a stopped run, 20 epochs in all"
    )


class _SubcommandParser(argparse.ArgumentParser):
    """A subcommand's parser whose epilog may be a function, called only when its help is shown: ``train``'s
    lists the config groups, read off the registries — which imports torch and Lightning, seconds that
    every other command (``report``, ``ui``, …) would otherwise spend on each start."""

    def format_help(self) -> str:
        if callable(self.epilog):
            self.epilog = self.epilog()
        return super().format_help()


def _train(args: argparse.Namespace) -> int:
    cfg = None if args.resume else compose(args.overrides)
    if args.print_config:
        if cfg is None:
            raise ConfigError("--print-config composes a new run's config; a resumed run's is its config.yaml artifact")
        print(mask_secrets(to_yaml(cfg)), end="")
        return 0
    from .data import DataError
    from .processes import stops_at_safe_points
    from .saved_runs import RunRecordError
    from .tracking.stability import DivergedError
    from .train import resume, train, train_seeds

    try:
        # Ctrl+C or a scheduler's SIGTERM stops training at the next batch boundary, the run marked KILLED
        with stops_at_safe_points():
            if cfg is None:
                result = resume(args.resume, args.overrides)
            elif cfg.seeds:
                return _print_seeds(train_seeds(cfg))
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
    print(f"tracking store: {mask_secrets(result.tracking_uri)}")
    print(f"see it with:    lightning-attn ui --tracking-uri '{mask_secrets(result.tracking_uri)}'")
    return 0


def _sweep(args: argparse.Namespace) -> int:
    from .sweep import load

    return _run_or_submit(load(args.file, args.overrides), args)


def _run_or_submit(spec, args: argparse.Namespace) -> int:
    """Run the sweep here, or (``--slurm``) submit its hosts as a job array."""
    from .sweep.launch import STORAGE_ENV

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
        from .sweep import run_sweep

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
    from .sweep.slurm import SlurmOptions, parse_parameters, submit

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


def _add_slurm_options(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("a Slurm job array, through submitit (--slurm; see docs/distributed.md)")
    group.add_argument(
        "--slurm",
        action="store_true",
        help="submit the sweep's hosts as a Slurm job array: the sweep is created now, each task "
        "joins it (requeued on preemption: it joins again)",
    )
    group.add_argument("--array", type=int, default=1, metavar="N", help="tasks in the array: hosts (default 1)")
    group.add_argument("--timeout-min", type=int, metavar="MIN", help="each task's time limit (required)")
    group.add_argument("--partition", help="the Slurm partition")
    group.add_argument(
        "--gpus-per-node", type=int, metavar="N", help="GPUs per task; --devices defaults to all of them (else cpu:1)"
    )
    group.add_argument("--cpus-per-task", type=int, metavar="N")
    group.add_argument("--mem-gb", type=float, metavar="GB")
    group.add_argument(
        "--slurm-param",
        action="append",
        metavar="KEY=VALUE",
        help="any other sbatch option, e.g. account=lab, qos=high (repeatable)",
    )
    group.add_argument(
        "--slurm-executor",
        default="slurm",
        choices=("slurm", "local"),
        help="local: submitit's local executor, the tasks on this machine (a rehearsal)",
    )
    group.add_argument("--wait", action="store_true", help="wait for the tasks; exit 1 if one failed")


def _compare(args: argparse.Namespace) -> int:
    from .sweep.spec import comparison, parse_seeds

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
    return _run_or_submit(spec, args)


def _print_seeds(result) -> int:
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


def _evaluate(args: argparse.Namespace) -> int:
    from .evaluate import EvaluateError, evaluate

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


def _benchmark(args: argparse.Namespace) -> int:
    from . import speedpass
    from .tracking import check_tracking_store, resolve_tracking_uri

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


def _report(args: argparse.Namespace) -> int:
    from .report import FORMATS, Constraint, Objective, build_report
    from .report.comparisons import parse_margin
    from .tracking import check_tracking_store, resolve_tracking_uri

    formats = tuple(f.strip() for f in args.format.split(",") if f.strip())
    uris = [resolve_tracking_uri(u) for u in (args.tracking_uri or [None])]
    for uri in uris:
        check_tracking_store(uri)
    try:
        constraints = [Constraint.parse(c) for c in args.constraint or []]
        objective = Objective.parse(args.objective)
        margins = dict(parse_margin(m) for m in args.margin or [])
        written = build_report(
            uris,
            args.out,
            args.experiment,
            args.study,
            formats,
            args.bootstrap_samples,
            args.reference,
            args.min_seeds,
            constraints,
            objective,
            log=not args.no_log,
            margins=margins,
        )
    except (LookupError, ValueError) as e:
        raise ConfigError(str(e).replace("choose from", f"choose from ({', '.join(FORMATS)}):")[:2000]) from None
    for text in written.decisions:
        print(f"{text}\n")
    for fmt, path in written.paths.items():
        print(f"{fmt:<5} {path.resolve()}")
    print(f"open the runs behind it: lightning-attn ui{_uri_flag((args.tracking_uri or [None])[0])}")
    if not written.results:
        print(
            f"no finished run to compare: {written.failures} run(s) failed; the report lists them and why",
            file=sys.stderr,
        )
        return 1
    return 0


def _uri_flag(uri: str | None) -> str:
    return f" --tracking-uri '{mask_secrets(uri)}'" if uri else ""


def _ui(args: argparse.Namespace) -> int:
    import os

    from .tracking import resolve_tracking_uri

    if args.optuna:
        return _optuna_dashboard(args)
    env = dict(os.environ)
    uri = resolve_tracking_uri(args.tracking_uri)
    if uri.startswith(("http://", "https://")):  # a tracking server serves its own UI
        print(f"the MLflow tracking server {mask_secrets(uri)} is its own UI: open it in a browser", flush=True)
        return 0
    # the store travels in the environment, not on a command line that `ps` shows to every user
    env["MLFLOW_BACKEND_STORE_URI"] = uri
    # two server processes: one person's browser needs no more, and MLflow's default four take twice as long to start
    port = str(args.port or 5000)
    cmd = [sys.executable, "-m", "mlflow", "ui", "--host", args.host, "--port", port, "--workers", "2"]
    print(f"MLflow UI on {mask_secrets(uri)}: http://{args.host}:{args.port or 5000}  (Ctrl+C stops it)", flush=True)
    host = "127.0.0.1" if args.host in ("0.0.0.0", "::", "") else args.host
    _print_experiment_links(uri, f"http://{host}:{args.port or 5000}")
    return _serve(cmd, env)


def _print_experiment_links(uri: str, base: str) -> None:
    """Each experiment's page, open on its training runs (MLflow 3 would open it on GenAI traces otherwise)."""
    from .tracking.mlflow import experiment_links

    for name, link in experiment_links(uri, base):
        print(f"  experiment {name}: {link}", flush=True)


def _optuna_dashboard(args: argparse.Namespace) -> int:
    """optuna-dashboard on a sweep's storage, in this process: the storage is opened (and so checked: one line,
    exit 3, when it cannot be reached) before anything is served, and its URL is on no command line.
    optuna-dashboard is an extra: without it, one line that says how to install it, exit 2."""
    try:
        from optuna_dashboard import run_server
    except ModuleNotFoundError as e:
        if e.name != "optuna_dashboard":  # installed, but broken: its own error says more
            raise
        raise ConfigError(
            "lightning-attn ui --optuna needs optuna-dashboard: pip install 'lightning-attn[dashboard]'"
        ) from None

    from .processes import serve_until_stopped
    from .sweep.storage import open_storage

    storage = args.storage or _only_sweep_journal()
    if "://" not in storage:  # a sweep's journal file: shown, never created
        path = Path(storage.removeprefix("journal:"))
        if not path.is_file():
            raise ConfigError(
                f"no Optuna journal at {path} (a sweep keeps one in outputs/sweeps/<name>/optuna.journal)"
            )
        storage = f"journal:{path}"
    opened = open_storage(storage, Path.cwd(), heartbeat_interval=60, grace_period=120)
    port = args.port or 8080
    print(f"optuna-dashboard on {mask_secrets(storage)}: http://{args.host}:{port}  (Ctrl+C stops it)", flush=True)
    signum = serve_until_stopped(lambda: run_server(opened, host=args.host, port=port))
    return 0 if signum in (None, signal.SIGINT) else 128 + signum


def _server(args: argparse.Namespace) -> int:
    """An MLflow tracking server for a team: a database backend store, an artifact store it serves
    itself (clients upload and download through it), bound to loopback unless ``--host`` says otherwise."""
    import os

    env = dict(os.environ)
    store = args.backend_store_uri or env.get("MLFLOW_BACKEND_STORE_URI") or f"sqlite:///{Path(SERVER_DB).resolve()}"
    register_url(store)
    store = database_url(store)
    env["MLFLOW_BACKEND_STORE_URI"] = store  # in the environment, not on a command line `ps` shows everyone
    artifacts = args.artifacts_destination or str(Path(SERVER_ARTIFACTS).resolve())
    cmd = [
        sys.executable,
        "-m",
        "mlflow",
        "server",
        "--host",
        args.host,
        "--port",
        str(args.port),
        "--artifacts-destination",
        artifacts,
        "--workers",
        str(args.workers),
    ]
    # the Host headers it answers: --allowed-hosts, else MLFLOW_SERVER_ALLOWED_HOSTS, else (bound beyond
    # loopback) this machine's names too — MLflow's default refuses every name but localhost's with 403
    allowed = args.allowed_hosts or env.get("MLFLOW_SERVER_ALLOWED_HOSTS") or server_allowed_hosts(args.host)
    if allowed:
        env["MLFLOW_SERVER_ALLOWED_HOSTS"] = allowed
    if args.host not in LOOPBACK and not args.no_auth:  # reachable by others: nobody in without a password
        cmd += ["--app-name", "basic-auth"]
        env |= _server_authentication(
            args, env, Path(store.removeprefix("sqlite:///")).parent if store.startswith("sqlite:///") else Path.cwd()
        )
    url = f"http://{args.host}:{args.port}"
    print(
        f"MLflow tracking server: {url}  (backend store {mask_secrets(store)}, artifacts {mask_secrets(artifacts)}; "
        "Ctrl+C stops it)",
        flush=True,
    )
    if "--app-name" in cmd:
        admin = env["MLFLOW_AUTH_ADMIN_USERNAME"]
        print(
            f"authentication: MLflow's basic auth, admin user {admin!r}; clients set MLFLOW_TRACKING_USERNAME and "
            "MLFLOW_TRACKING_PASSWORD (--no-auth to turn it off)",
            flush=True,
        )
    if allowed:
        names = [h for h in allowed.split(",") if "*" not in h][:6]
        print(f"it answers clients that reach it as: {', '.join(names)}, … (--allowed-hosts to change)", flush=True)
    print(f"point runs, sweeps and reports at it: export MLFLOW_TRACKING_URI={url}", flush=True)
    return _serve(cmd, env)


def _server_authentication(args: argparse.Namespace, env: dict[str, str], folder: Path) -> dict[str, str]:
    """The environment that turns on MLflow's basic-auth app: its config file (users kept in
    ``mlflow-auth.db`` beside the backend store) and the admin password — from the environment or a file,
    never the command line, where ``ps`` would show it to every user of the machine."""
    import secrets

    from .tracking.secrets import register

    password = env.get("MLFLOW_AUTH_ADMIN_PASSWORD")
    if args.admin_password_file:
        try:
            password = Path(args.admin_password_file).read_text(encoding="utf-8").strip()
        except OSError as e:
            raise ConfigError(f"--admin-password-file {args.admin_password_file}: {e.strerror or e}") from None
    if not password:
        raise ConfigError(
            f"a server bound to {args.host} is open to anyone who can reach it: set "
            "MLFLOW_AUTH_ADMIN_PASSWORD (or --admin-password-file FILE) for MLflow's basic "
            "authentication, or pass --no-auth on a network you trust"
        )
    register(password)
    user = env.get("MLFLOW_AUTH_ADMIN_USERNAME", "admin")
    # the auth app's CSRF protection signs with a key every server process must share; kept beside the users
    # (readable by the server's user alone) so that a restart does not invalidate what browsers hold
    secret = env.get("MLFLOW_FLASK_SERVER_SECRET_KEY")
    if not secret:
        key_file = folder.resolve() / "mlflow-auth.key"
        if not key_file.is_file():
            key_file.touch(mode=0o600)
            key_file.write_text(secrets.token_urlsafe(32), encoding="utf-8")
        secret = key_file.read_text(encoding="utf-8").strip()
    register(secret)
    config = folder.resolve() / "mlflow-auth.ini"
    config.write_text(
        "[mlflow]\ndefault_permission = READ\n"
        f"database_uri = sqlite:///{folder.resolve() / 'mlflow-auth.db'}\nadmin_username = {user}\n"
        "authorization_function = mlflow.server.auth:authenticate_request_basic_auth\n",
        encoding="utf-8",
    )
    return {
        "MLFLOW_AUTH_CONFIG_PATH": str(config),
        "MLFLOW_AUTH_ADMIN_PASSWORD": password,
        "MLFLOW_AUTH_ADMIN_USERNAME": user,
        "MLFLOW_FLASK_SERVER_SECRET_KEY": secret,
    }


def _serve(cmd: list[str], env: dict[str, str]) -> int:
    """Run a server until it ends or a signal stops us; then stop it and everything it started (its
    process group). Its output passes through ours, where secrets are masked."""
    import subprocess
    import threading

    from .processes import Stopped, die_with_parent, own_group, stop_group, stop_signals

    server = None
    with stop_signals():
        try:
            server = subprocess.Popen(
                cmd,
                env=env,
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
                **own_group(then=die_with_parent),
            )
            relay = threading.Thread(target=_relay, args=(server.stdout,), daemon=True)
            relay.start()
            code = server.wait()
            relay.join(timeout=2)
            return code
        except Stopped as stop:
            if server is not None:
                stop_group(server, grace_s=10)
            return 0 if stop.signum == signal.SIGINT else stop.exit_code


def _relay(stream) -> None:
    for line in stream:
        sys.stdout.write(line)  # masked on its way out (console.mask_output)
        sys.stdout.flush()


def _only_sweep_journal() -> str:
    journals = sorted(Path("outputs/sweeps").glob("*/optuna.journal"))
    if len(journals) != 1:
        found = ", ".join(str(j) for j in journals) or "none under outputs/sweeps/"
        raise ConfigError(f"say which sweep storage to open with --storage (journal files: {found})")
    return str(journals[0])


def _config(args: argparse.Namespace) -> int:
    print(_groups_help())
    return 0


def build_parser() -> argparse.ArgumentParser:
    from .report.significance import BOOTSTRAP_SAMPLES
    from .tracking.seeds import MIN_SEEDS_FOR_CI

    parser = argparse.ArgumentParser(
        prog="lightning-attn",
        description="Hard or soft attention, for my task, at what cost? Train, sweep and compare attention mechanisms.",
    )
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_SubcommandParser)
    train = sub.add_parser(
        "train",
        help="train one model and record it in MLflow",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=_train_epilog,
    )
    train.add_argument(
        "overrides", nargs="*", help="group=choice or dotted.key=value (with --resume: dotted keys only)"
    )
    train.add_argument("--print-config", action="store_true", help="print the composed config and exit")
    train.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="continue this run from its last checkpoint, into the same "
        "MLflow run (its store: logger.tracking_uri=URI, else $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
    )
    train.set_defaults(func=_train)
    evaluate = sub.add_parser(
        "evaluate",
        help="score a trained run again (its best checkpoint) on any split or file pair, into a child run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  lightning-attn evaluate RUN_ID                       # its test split again\n"
        "  lightning-attn evaluate RUN_ID split=test_2017_flickr task.beam_size=1\n"
        "  lightning-attn evaluate RUN_ID src=news.de ref=news.en",
    )
    evaluate.add_argument("run_id", help="the MLflow run id (train prints it)")
    evaluate.add_argument("overrides", nargs="*", help="split=NAME, src=FILE ref=FILE, or dotted.key=value")
    evaluate.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here")
    evaluate.set_defaults(func=_evaluate)
    sweep = sub.add_parser(
        "sweep",
        help="tune each mechanism with Optuna (one study per mechanism, equal budgets), every trial in MLflow",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  lightning-attn sweep sweeps/smoke.yaml --devices cpu:2\n"
        "  lightning-attn sweep sweeps/translation_compare.yaml n_trials=20 --devices 0,1,2,3\n"
        "  lightning-attn sweep sweeps/smoke.yaml --resume\n"
        "  lightning-attn sweep sweeps/smoke.yaml --storage postgresql://… --join   # on a second host\n"
        "  lightning-attn sweep sweeps/translation_compare.yaml --slurm --array 4 --gpus-per-node 4 --timeout-min 1440",
    )
    sweep.add_argument("file", type=Path, help="a sweep file, e.g. sweeps/smoke.yaml")
    sweep.add_argument(
        "overrides", nargs="*", help="sweep keys (n_trials=4, sampler.kind=random) or run keys (trainer.max_epochs=2)"
    )
    sweep.add_argument(
        "--devices", help="cpu:N (N CPU workers) or GPU ids 0,1,2 (one worker each); default: all GPUs, else cpu:1"
    )
    sweep.add_argument("--ddp", action="store_true", help="run each trial as one DDP job over all --devices")
    sweep.add_argument(
        "--storage",
        help="Optuna storage URL (or $LIGHTNING_ATTN_SWEEP_STORAGE, off the command line); "
        "default: a journal file in the sweep folder",
    )
    sweep.add_argument("--out", type=Path, help="the sweep folder; default: outputs/sweeps/<name>")
    sweep.add_argument("--resume", action="store_true", help="continue an existing sweep")
    sweep.add_argument(
        "--join", action="store_true", help="join a sweep another host started on the same --storage postgresql://…"
    )
    sweep.add_argument("--dry-run", action="store_true", help="print the studies and search spaces, train nothing")
    _add_slurm_options(sweep)
    sweep.set_defaults(func=_sweep)
    compare = sub.add_parser(
        "compare",
        help="train mechanisms as configured, once per seed, without tuning (the sweep machinery, no search)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  lightning-attn compare attention=soft,hard,uniform seeds=0-4 --devices cpu:2\n"
        "  lightning-attn compare task=captioning attention=soft,hard seeds=0,1,2 trainer.max_epochs=20\n"
        "  lightning-attn compare attention=soft,hard seeds=0-4 --resume   # continue after a stop\n"
        "  lightning-attn compare attention=soft,hard,uniform seeds=0-2 --until-decided --max-seeds 8\n"
        "variants of one mechanism (hard with other settings): a sweep file with no space (see sweeps/)",
    )
    compare.add_argument(
        "overrides",
        nargs="*",
        help="attention=A,B,… (required), seeds=0-4 (default 0-2), task=NAME (default: the config's), "
        "and any group=choice or dotted.key=value for every run",
    )
    compare.add_argument(
        "--name", help="the comparison's name (its sweep folder and MLflow experiment); default compare-<task>"
    )
    for flag, text in (
        ("--devices", "cpu:N (N CPU workers) or GPU ids 0,1,2; default: all GPUs, else cpu:1"),
        ("--storage", "Optuna storage URL; default: a journal file in the folder"),
        ("--out", "the folder; default: outputs/sweeps/<name>"),
    ):
        compare.add_argument(flag, type=Path if flag == "--out" else str, help=text)
    compare.add_argument("--ddp", action="store_true", help="run each training as one DDP job over all --devices")
    compare.add_argument("--resume", action="store_true", help="continue: runs that finished are not trained again")
    compare.add_argument("--join", action="store_true", help="join from another host (--storage postgresql://…)")
    compare.add_argument("--dry-run", action="store_true", help="print what would run, train nothing")
    compare.add_argument(
        "--until-decided",
        action="store_true",
        help="after the seeds, one more seed per mechanism with a pair still undecided (the report's tests, over all "
        "pairs and looks), until every pair is decided or --max-seeds",
    )
    compare.add_argument(
        "--max-seeds",
        type=int,
        metavar="N",
        help="with --until-decided: at most N seed runs a mechanism (default: the seeds and 5 more)",
    )
    compare.add_argument(
        "--no-speed-pass",
        action="store_true",
        help="do not time one checkpoint per mechanism side by side after the runs (the report's speed figures)",
    )
    _add_slurm_options(compare)
    compare.set_defaults(func=_compare)
    server = sub.add_parser(
        "server",
        help="start an MLflow tracking server (database backend store, served artifacts) for several hosts",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="example (see docs/distributed.md):\n"
        "  PGPASSWORD=… lightning-attn server --backend-store-uri postgresql://mlflow@db/mlflow \\\n"
        "      --artifacts-destination /shared/mlartifacts --host 0.0.0.0",
    )
    server.add_argument(
        "--backend-store-uri",
        help=f"where runs are kept: a database URL; default $MLFLOW_BACKEND_STORE_URI, else sqlite:///{SERVER_DB} here",
    )
    server.add_argument("--artifacts-destination", help=f"where artifacts are kept (default: ./{SERVER_ARTIFACTS})")
    server.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    server.add_argument("--port", type=int, default=5000)
    server.add_argument("--workers", type=int, default=2, help="server processes (default 2)")
    server.add_argument(
        "--admin-password-file",
        metavar="FILE",
        help="bound beyond loopback: the auth admin's password, read from FILE (default: "
        "$MLFLOW_AUTH_ADMIN_PASSWORD; never on the command line)",
    )
    server.add_argument(
        "--no-auth",
        action="store_true",
        help="bound beyond loopback, serve without authentication (anyone who can reach it can "
        "read, write and delete every run)",
    )
    server.add_argument(
        "--allowed-hosts",
        metavar="H1,H2",
        help="the host names (and host:port patterns) clients may reach it by; default "
        "$MLFLOW_SERVER_ALLOWED_HOSTS, else beyond loopback this machine's names and addresses "
        "and MLflow's defaults (localhost, private addresses)",
    )
    server.set_defaults(func=_server)
    report = sub.add_parser(
        "report", help="compare mechanisms from MLflow and decide: HTML, Markdown, CSV and JSON trade-off report"
    )
    report.add_argument("--experiment", action="append", help="MLflow experiment (repeatable); default: all")
    report.add_argument("--study", action="append", help="only the runs of this sweep study (repeatable)")
    report.add_argument(
        "--tracking-uri",
        action="append",
        help="a store to read (repeatable: one report over several stores); default: "
        "$MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here",
    )
    report.add_argument("--out", type=Path, default=Path("outputs/report"), help="folder (default: outputs/report)")
    report.add_argument("--format", default="html,md,csv,json", help="any of html,md,csv,json")
    report.add_argument(
        "--bootstrap-samples", type=int, default=BOOTSTRAP_SAMPLES, help="bootstrap resamples of each test"
    )
    report.add_argument("--reference", help="the mechanism the others are compared with (default: soft when present)")
    report.add_argument(
        "--min-seeds",
        type=int,
        default=MIN_SEEDS_FOR_CI,
        help=f"seed runs a CI and a verdict need (default {MIN_SEEDS_FOR_CI})",
    )
    report.add_argument(
        "--constraint",
        action="append",
        metavar="METRIC<=VALUE",
        help="what the pick must meet (repeatable): a speed_pass/<greedy|beam|train>_<ms|mib> figure as the speed "
        "pass measured it, e.g. speed_pass/greedy_ms<=0.5, any other metric by the mean over its seed runs, e.g. "
        "speed/peak_rss_mb<=2000; the first names the resource that breaks a tie",
    )
    report.add_argument(
        "--margin",
        action="append",
        metavar="[METRIC=]VALUE",
        help="of practical equivalence: mechanisms whose difference is shown to be smaller are called equivalent "
        "(repeatable, per metric; default: each task's, 1 BLEU / 1 BLEU-4)",
    )
    report.add_argument(
        "--objective",
        metavar="METRIC[:max|:min]",
        help="what the pick maximises among those that meet the constraints (default: the headline)",
    )
    report.add_argument(
        "--no-log", action="store_true", help="do not log the report to a 'report' run in each experiment it covers"
    )
    report.set_defaults(func=_report)
    benchmark = sub.add_parser(
        "benchmark",
        help="time mechanisms side by side: trained runs (runs), or cost against input size (sizes)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  lightning-attn benchmark runs --experiment demo\n"
        "  lightning-attn benchmark sizes --task translation --sizes 16,256,4096 --out outputs/sizes",
    )
    benchmark.add_argument("what", choices=("runs", "sizes"), help="runs: trained checkpoints; sizes: input sizes")
    benchmark.add_argument("overrides", nargs="*", help="sizes: dotted.key=value changes to every model's config")
    benchmark.add_argument("--experiment", action="append", help="runs: one run per mechanism of it (repeatable)")
    benchmark.add_argument(
        "--run",
        action="append",
        metavar="RUN_ID[=NAME]",
        help="runs: a run to time (repeatable), under NAME if given (the same run twice: an A/A check)",
    )
    benchmark.add_argument("--tracking-uri", help="runs: default $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here")
    benchmark.add_argument("--no-log", action="store_true", help="runs: do not log the pass to MLflow")
    benchmark.add_argument("--steps", type=int, default=20, help="runs: decoder steps of every decode (default 20)")
    benchmark.add_argument("--batch", type=int, default=32, help="runs: examples in the training step (default 32)")
    benchmark.add_argument("--task", action="append", help="sizes: a task (repeatable; default: every task)")
    benchmark.add_argument("--mechanism", action="append", help="sizes: a mechanism (repeatable; default: all)")
    benchmark.add_argument("--sizes", help="sizes: positions, comma-separated (default 16,64,256,1024,4096)")
    benchmark.add_argument("--out", type=Path, default=Path("outputs/sizes"), help="sizes: folder for its files")
    benchmark.add_argument("--reference", help="the mechanism the ratios are to (default: soft)")
    benchmark.add_argument("--rounds", type=int, help="interleaved timing rounds (default: runs 30, sizes 11)")
    benchmark.add_argument("--threads", type=int, help="torch's threads while timing (default: as configured)")
    benchmark.add_argument("--device", default="cpu", help="cpu, cuda or cuda:N (default cpu)")
    benchmark.set_defaults(func=_benchmark)
    ui = sub.add_parser("ui", help="start the MLflow UI (or with --optuna optuna-dashboard) on 127.0.0.1")
    ui.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    ui.add_argument("--port", type=int, help="default 5000 (MLflow) or 8080 (optuna-dashboard)")
    ui.add_argument("--tracking-uri", help="default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here")
    ui.add_argument("--optuna", action="store_true", help="optuna-dashboard on a sweep's storage instead")
    ui.add_argument("--storage", help="with --optuna: storage URL or journal file (default: the one sweep here)")
    ui.set_defaults(func=_ui)
    config = sub.add_parser("config", help="list the config groups and their choices")
    config.set_defaults(func=_config)
    return parser


def main(argv: list[str] | None = None) -> int:
    console.mask_output()  # before anything is printed, by us or by a library
    parser = build_parser()
    # key=value overrides may also come after the options (argparse alone refuses that order)
    args, extra = parser.parse_known_args(argv)
    if extra and (not hasattr(args, "overrides") or any(item.startswith("-") for item in extra)):
        parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if extra:
        args.overrides = [*args.overrides, *extra]
    console.setup()
    try:
        load_plugins()
        return args.func(args)
    except ConfigError as e:
        print(f"error: {e}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except ConnectionError as e:  # an MLflow store or Optuna storage that cannot be reached: said in one line
        print(f"error: {mask_secrets(str(e))}", file=sys.stderr)
        return EXIT_UNREACHABLE


if __name__ == "__main__":
    sys.exit(main())
