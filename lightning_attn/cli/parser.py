"""The ``lightning-attn`` argument parser: every command's options, and the groups ``sweep`` and ``compare``
share defined once."""

from __future__ import annotations

import argparse
from pathlib import Path

from ..tracking.server import SERVER_ARTIFACTS, SERVER_DB
from . import run, view


def _train_epilog() -> str:
    return (
        view.groups_help() + "\n\nexamples:\n  lightning-attn train attention=hard trainer.max_epochs=3\n"
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


TRACKING_URI_HELP = "default: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db here"


def _add_run_options(parser: argparse.ArgumentParser) -> None:
    """What a command about one trained run takes: the run, and the store it is in."""
    parser.add_argument("run_id", help="the MLflow run id (train prints it)")
    parser.add_argument("--tracking-uri", help=TRACKING_URI_HELP)


def _add_launch_options(parser: argparse.ArgumentParser, *, runs: str) -> None:
    """Where and how a sweep's (or a comparison's) workers run — the options ``sweep`` and ``compare`` share,
    ``runs`` naming what one run of it is — and the Slurm submission's."""
    parser.add_argument(
        "--devices", help="cpu:N (N CPU workers) or GPU ids 0,1,2 (one worker each); default: all GPUs, else cpu:1"
    )
    parser.add_argument("--ddp", action="store_true", help=f"run each {runs} as one DDP job over all --devices")
    parser.add_argument(
        "--storage",
        help="Optuna storage URL (or $LIGHTNING_ATTN_SWEEP_STORAGE, off the command line); "
        "default: a journal file in the sweep folder",
    )
    parser.add_argument("--out", type=Path, help="the sweep folder; default: outputs/sweeps/<name>")
    parser.add_argument(
        "--resume", action="store_true", help="continue: trials and runs that finished are not run again"
    )
    parser.add_argument(
        "--join", action="store_true", help="join a sweep another host started on the same --storage postgresql://…"
    )
    parser.add_argument("--dry-run", action="store_true", help="print what would run (studies, spaces), train nothing")
    _add_slurm_options(parser)


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


def build_parser() -> argparse.ArgumentParser:
    from ..report.significance import BOOTSTRAP_SAMPLES
    from ..tracking.seeds import MIN_SEEDS_FOR_CI

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
        "--no-model", action="store_true", help="no MLflow model of the run (a translation run gets one by default)"
    )
    train.add_argument(
        "--resume",
        metavar="RUN_ID",
        help="continue this run from its last checkpoint, into the same "
        "MLflow run (its store: logger.tracking_uri=URI, else $MLFLOW_TRACKING_URI or sqlite:///mlflow.db)",
    )
    train.set_defaults(func=run.train)
    evaluate = sub.add_parser(
        "evaluate",
        help="score a trained run again (its best checkpoint) on any split or file pair, into a child run",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  lightning-attn evaluate RUN_ID                       # its test split again\n"
        "  lightning-attn evaluate RUN_ID split=test_2017_flickr task.beam_size=1\n"
        "  lightning-attn evaluate RUN_ID src=news.de ref=news.en",
    )
    _add_run_options(evaluate)
    evaluate.add_argument("overrides", nargs="*", help="split=NAME, src=FILE ref=FILE, or dotted.key=value")
    evaluate.set_defaults(func=run.evaluate)
    predict = sub.add_parser(
        "predict",
        help="translate text or caption images with a trained run (its best checkpoint)",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="examples:\n  lightning-attn predict RUN_ID --input news.de --output news.en\n"
        "  echo 'ein kleiner hund' | lightning-attn predict RUN_ID --beam 1\n"
        "  lightning-attn predict CAPTIONING_RUN_ID --images photos/ extra.jpg",
    )
    _add_run_options(predict)
    predict.add_argument("overrides", nargs="*", help="dotted.key=value changes to the run's config")
    predict.add_argument("--input", type=Path, help="one sentence (or image file) a line (default: standard input)")
    predict.add_argument("--images", nargs="+", metavar="PATH", help="image files or folders of them, to caption")
    predict.add_argument("--output", type=Path, help="one output a line (default: standard output)")
    predict.add_argument("--beam", type=int, help="beam size, 1 for greedy (default: as the run was tested)")
    predict.set_defaults(func=run.predict)
    log_model = sub.add_parser(
        "log-model",
        help="log a trained translation run as an MLflow model (runs:/RUN_ID/model) that mlflow models serve answers",
    )
    _add_run_options(log_model)
    log_model.set_defaults(func=run.log_model)
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
    _add_launch_options(sweep, runs="trial")
    sweep.set_defaults(func=run.sweep)
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
    _add_launch_options(compare, runs="training")
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
    compare.set_defaults(func=run.compare)
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
    server.set_defaults(func=view.server)
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
    report.set_defaults(func=view.report)
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
    benchmark.set_defaults(func=run.benchmark)
    ui = sub.add_parser("ui", help="start the MLflow UI (or with --optuna optuna-dashboard) on 127.0.0.1")
    ui.add_argument("--host", default="127.0.0.1", help="interface to bind (default 127.0.0.1: this machine only)")
    ui.add_argument("--port", type=int, help="default 5000 (MLflow) or 8080 (optuna-dashboard)")
    ui.add_argument("--tracking-uri", help=TRACKING_URI_HELP)
    ui.add_argument("--optuna", action="store_true", help="optuna-dashboard on a sweep's storage instead")
    ui.add_argument("--storage", help="with --optuna: storage URL or journal file (default: the one sweep here)")
    ui.set_defaults(func=view.ui)
    config = sub.add_parser("config", help="list the config groups and their choices")
    config.set_defaults(func=view.config)
    return parser
