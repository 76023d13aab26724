"""The commands that look and serve: ``report``, ``ui``, ``server``, ``config``. Each takes the parsed arguments and
returns the exit code; bad input raises :class:`~lightning_attn.config.ConfigError`."""

from __future__ import annotations

import argparse
import os
import signal
import sys
from pathlib import Path

from ..config import EXPERIMENT, GROUP_NAMES, ConfigError, group_choices
from ..processes import EXIT_FAILED, run_server
from ..tracking import mask_secrets


def groups_help() -> str:
    lines = ["config groups (pick with group=choice):"]
    for group in (*GROUP_NAMES, EXPERIMENT):
        lines.append(f"  {group:<10} {', '.join(group_choices(group)) or '(none)'}")
    return "\n".join(lines)


def config(args: argparse.Namespace) -> int:
    print(groups_help())
    return 0


def report(args: argparse.Namespace) -> int:
    from ..report import FORMATS, Constraint, Objective, build_report
    from ..report.comparisons import parse_margin
    from ..tracking import check_tracking_store, resolve_tracking_uri

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
            studies=args.study,
            formats=formats,
            bootstrap_samples=args.bootstrap_samples,
            reference=args.reference,
            min_seeds=args.min_seeds,
            constraints=constraints,
            objective=objective,
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
        return EXIT_FAILED
    return 0


def _uri_flag(uri: str | None) -> str:
    return f" --tracking-uri '{mask_secrets(uri)}'" if uri else ""


def ui(args: argparse.Namespace) -> int:
    from ..tracking import resolve_tracking_uri

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
    return run_server(cmd, env)


def _print_experiment_links(uri: str, base: str) -> None:
    """Each experiment's page, open on its training runs (MLflow 3 would open it on GenAI traces otherwise)."""
    from ..tracking.mlflow import experiment_links

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

    from ..processes import serve_until_stopped
    from ..sweep.storage import open_storage

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


def _only_sweep_journal() -> str:
    journals = sorted(Path("outputs/sweeps").glob("*/optuna.journal"))
    if len(journals) != 1:
        found = ", ".join(str(j) for j in journals) or "none under outputs/sweeps/"
        raise ConfigError(f"say which sweep storage to open with --storage (journal files: {found})")
    return str(journals[0])


def server(args: argparse.Namespace) -> int:
    """An MLflow tracking server for a team (:mod:`lightning_attn.tracking.server`): a database backend store, an
    artifact store it serves itself, bound to loopback unless ``--host`` says otherwise."""
    from ..tracking.server import ServerSetupError, plan_server

    try:
        plan = plan_server(
            env=os.environ,
            host=args.host,
            port=args.port,
            workers=args.workers,
            backend_store_uri=args.backend_store_uri,
            artifacts_destination=args.artifacts_destination,
            allowed_hosts=args.allowed_hosts,
            no_auth=args.no_auth,
            admin_password_file=args.admin_password_file,
        )
    except ServerSetupError as e:
        raise ConfigError(str(e)) from None
    print(
        f"MLflow tracking server: {plan.url}  (backend store {mask_secrets(plan.store)}, artifacts "
        f"{mask_secrets(plan.artifacts)}; Ctrl+C stops it)",
        flush=True,
    )
    if plan.admin:
        print(
            f"authentication: MLflow's basic auth, admin user {plan.admin!r}; clients set MLFLOW_TRACKING_USERNAME "
            "and MLFLOW_TRACKING_PASSWORD (--no-auth to turn it off)",
            flush=True,
        )
    if plan.allowed:
        print(
            f"it answers clients that reach it as: {', '.join(plan.allowed[:6])}, … (--allowed-hosts to change)",
            flush=True,
        )
    print(f"point runs, sweeps and reports at it: export MLFLOW_TRACKING_URI={plan.url}", flush=True)
    return run_server(plan.command, plan.env)
