"""Sweep files: reading, checking, search spaces, trial configs; budgets and storages (no training)."""

from __future__ import annotations

import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from lightning_attn.cli import main
from lightning_attn.config import ConfigError, compose
from lightning_attn.resources import sweeps_dir
from lightning_attn.sweep import launch, load
from lightning_attn.sweep.budget import counts, next_action, outcome
from lightning_attn.sweep.launch import parse_devices
from lightning_attn.sweep.samplers import make_pruner, make_sampler, sampler_seed
from lightning_attn.sweep.spec import grid_of, run_overrides, space_of, suggest
from lightning_attn.sweep.storage import (
    FAILURE_REASON,
    RETRY_OF,
    STALE,
    HeartbeatJournalStorage,
    describe,
    fail_stale_trials,
)

LR = "task.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}"
SWEEP = """
name: t
task: translation
mechanisms: {soft: {}, hard: {space: {attention.entropy_weight: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}}}}
space:
  task.lr: {type: float, low: 1.0e-4, high: 1.0e-2, log: true}
  attention.score: {type: categorical, choices: [additive, general]}
  attention.hidden_dim: {type: int, low: 16, high: 64, step: 16, when: {attention.score: additive}}
n_trials: 3
"""


def write(text: str, name: str = "s.yaml") -> Path:
    path = Path(name)
    path.write_text(text)
    return path


def test_every_shipped_sweep_file_loads_and_composes():
    files = sorted(sweeps_dir().glob("*.yaml"))
    names = {f.stem for f in files}
    expected = {f"{t}_{m}" for t in ("translation", "captioning") for m in ("soft", "hard", "compare")}
    assert expected | {"smoke", "tradeoff", "demo"} <= names
    for path in files:
        spec = load(path)  # composes every mechanism's trial config
        assert spec.mechanisms and spec.objectives


def test_compare_sweeps_give_every_mechanism_the_same_budget():
    from lightning_attn.attention import MECHANISMS

    for task in ("translation", "captioning"):
        spec = load(sweeps_dir() / f"{task}_compare.yaml")
        assert {m.attention for m in spec.mechanisms.values()} == set(MECHANISMS)
        assert spec.n_trials is not None  # one budget for all studies


def test_defaults_objective_is_the_tasks_validation_metric():
    spec = load(write(SWEEP))
    assert [(o.metric, o.direction) for o in spec.objectives] == [("val/bleu", "maximize")]
    assert spec.mechanisms["hard"].attention == "hard"


def test_unknown_key_names_the_valid_ones():
    with pytest.raises(ConfigError, match=r"unknown key 'n_trails' in the top level; valid keys there: .*n_trials"):
        load(write(SWEEP + "n_trails: 4\n"))
    # nested: the keys valid at the level of the mistake (a search-space key may hold dots)
    typo = SWEEP.replace(LR, "task.lr: {typ: float, low: 1.0e-4, high: 1.0e-2}")
    with pytest.raises(ConfigError, match=r"unknown key 'typ' in space\['task.lr'\]; valid keys there: type, low"):
        load(write(typo))
    with pytest.raises(ConfigError, match=r"unknown key 'kidn' in sampler; valid keys there: kind, seed"):
        load(write(SWEEP), ["sampler.kidn=random"])
    with pytest.raises(ConfigError, match=r"unknown key 'task.lrr'"):
        load(write(SWEEP.replace("task.lr:", "task.lrr:")))


def test_malformed_yaml_names_file_line_and_column():
    path = write(SWEEP + "pruner: {kind: median\n")
    with pytest.raises(ConfigError, match=rf"^{path}:\d+:\d+: invalid YAML: "):
        load(path)


def test_bad_values_are_named():
    with pytest.raises(ConfigError, match="sampler.kind 'bayes'; choose one of: tpe, random, nsga2, grid"):
        load(write(SWEEP), ["sampler.kind=bayes"])
    with pytest.raises(ConfigError, match="log-scale parameter needs low > 0"):
        load(write(SWEEP.replace(LR, "task.lr: {type: float, low: 0.0, high: 1.0e-2, log: true}")))
    with pytest.raises(ConfigError, match="when names 'attention.scor'"):
        load(write(SWEEP.replace("when: {attention.score:", "when: {attention.scor:")))
    with pytest.raises(ConfigError, match="not found"):
        load("missing.yaml")


def test_command_line_overrides_go_to_the_sweep_or_to_every_trial():
    spec = load(write(SWEEP), ["n_trials=7", "trainer.max_epochs=1", "task.lr=0.01", "sampler.kind=random"])
    assert spec.n_trials == 7 and spec.sampler.kind == "random"
    assert spec.overrides[-2:] == ["trainer.max_epochs=1", "task.lr=0.01"]  # `task` is a sweep key, task.* a run key
    assert "trainer.max_epochs=1" in run_overrides(spec, "soft", {}, seed=0)


def test_conditional_parameter_is_only_suggested_when_its_condition_holds():
    spec = load(write(SWEEP))
    space = space_of(spec, "hard")
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=0))
    seen = {"additive": 0, "general": 0}
    for _ in range(20):
        trial = study.ask()
        params = suggest(trial, space)
        seen[params["attention.score"]] += 1
        assert ("attention.hidden_dim" in params) == (params["attention.score"] == "additive")
        assert 1e-4 <= params["attention.entropy_weight"] <= 1e-2
        compose(run_overrides(spec, "hard", params, seed=0))  # every sampled point is a valid config
        study.tell(trial, 0.0)
    assert seen["additive"] and seen["general"]


GRID = """
name: g
task: translation
mechanisms: {soft: {}}
space:
  task.lr: {type: float, low: 0.001, high: 0.003, step: 0.001}
  attention.score: {type: categorical, choices: [additive, general]}
  attention.hidden_dim: {type: int, low: 16, high: 32, step: 16}
sampler: {kind: grid}
"""


def test_grid_needs_discrete_parameters():
    grid = grid_of(space_of(load(write(GRID)), "soft"))
    assert grid["task.lr"] == pytest.approx([0.001, 0.002, 0.003])
    assert grid["attention.score"] == ["additive", "general"] and grid["attention.hidden_dim"] == [16, 32]
    with pytest.raises(ConfigError, match="task.lr: the grid sampler needs a step"):
        load(write(GRID.replace(", step: 0.001}", "}")))
    with pytest.raises(ConfigError, match="cannot search a conditional parameter"):
        load(write(GRID.replace("step: 16}", "step: 16, when: {attention.score: additive}}")))


def test_samplers_and_pruners():
    spec = load(write(SWEEP))
    sampler = make_sampler(spec, "soft", worker=1, parallel=True)
    assert isinstance(sampler, optuna.samplers.TPESampler) and sampler._constant_liar
    assert isinstance(make_pruner(spec), optuna.pruners.MedianPruner)
    two = load(
        write(SWEEP), ["objectives=[{metric: val/bleu, direction: maximize}, {metric: val/loss, direction: minimize}]"]
    )
    assert isinstance(make_pruner(two), optuna.pruners.NopPruner)  # Optuna cannot prune multi-objective studies
    assert isinstance(
        make_sampler(load(write(SWEEP), ["sampler.kind=nsga2"]), "soft", 0, False), optuna.samplers.NSGAIISampler
    )


def test_devices(monkeypatch):
    cpu = parse_devices("cpu:2")
    assert cpu.kind == "cpu" and len(cpu.ids) == 2 and cpu.threads >= 1 and not cpu.warning
    assert "share cores" in parse_devices(f"cpu:{4 * launch.cpu_cores()}").warning  # allowed, but said
    with pytest.raises(ConfigError, match="cpu:N"):
        parse_devices("gpu")
    # GPU ids are checked against what CUDA sees, before anything starts
    monkeypatch.setattr(launch, "visible_gpus", lambda: 4)
    assert parse_devices("0,1,3").ids == ["0", "1", "3"]
    assert parse_devices("0,0,1,1").ids == ["0", "0", "1", "1"]  # several workers packed on a GPU
    with pytest.raises(ConfigError, match=r"--devices 0,7: no GPU 7 on this machine \(CUDA sees 4: 0, 1, 2, 3\)"):
        parse_devices("0,7")
    monkeypatch.setattr(launch, "visible_gpus", lambda: 0)
    with pytest.raises(ConfigError, match="no GPU 7 on this machine \\(CUDA sees no GPU here\\)"):
        parse_devices("7")


def test_storage_password_is_masked():
    assert describe("postgresql://optuna:s3cret@db:5432/sweeps", Path("x")) == "postgresql://optuna:***@db:5432/sweeps"


def _trial(study, state, **attrs):
    trial = study.ask()
    for key, value in attrs.items():
        trial.set_user_attr(key, value)
    if state != TrialState.RUNNING:
        study.tell(trial, 1.0 if state == TrialState.COMPLETE else None, state=state)
    return trial


def test_budget_counts_every_outcome_but_a_dead_workers_trial():
    study = optuna.create_study()
    _trial(study, TrialState.COMPLETE)
    _trial(study, TrialState.PRUNED)
    _trial(study, TrialState.FAIL)  # a diverged trial is a result: it used budget
    _trial(study, TrialState.FAIL, **{STALE: True})  # its worker died: it did not
    trials = study.get_trials()
    assert counts(trials)["counted"] == 3
    assert next_action(trials, 4) == "ask"
    assert next_action(trials, 3) == "done"
    _trial(study, TrialState.RUNNING)
    assert next_action(study.get_trials(), 4) == "wait"  # it may still die and need a retry
    study.enqueue_trial({"x": 1.0})
    assert next_action(study.get_trials(), 4) == "ask"  # a retry waits


def test_the_outcome_counts_failures_for_good_and_names_the_first():
    soft, hard = optuna.create_study(study_name="s-soft"), optuna.create_study(study_name="s-hard")
    _trial(hard, TrialState.FAIL, failure_reason="diverged first")
    _trial(soft, TrialState.FAIL, **{STALE: True, "failure_reason": "worker died"})  # retried: not a failure
    _trial(soft, TrialState.COMPLETE)
    _trial(hard, TrialState.FAIL, failure_reason="diverged later")
    some = outcome({"soft": soft, "hard": hard})
    assert (some.complete, some.failed, some.without_result) == (1, 2, ["hard"]) and not some.nothing_done
    assert some.first_failure == "s-hard #0: diverged first"
    nothing = outcome({"hard": hard})
    assert nothing.nothing_done and nothing.first_failure == "s-hard #0: diverged first"
    assert not outcome({"soft": optuna.create_study()}).nothing_done  # nothing ran: nothing failed either


def test_stale_trial_is_failed_with_its_reason_and_retried(tmp_path):
    storage = HeartbeatJournalStorage(tmp_path / "j.journal", heartbeat_interval=1, grace_period=2)
    study = optuna.create_study(storage=storage, study_name="s")
    alive, dead = study.ask(), study.ask()
    dead.suggest_float("lr", 0.1, 1.0)
    storage.record_heartbeat(dead._trial_id)
    time.sleep(2.5)
    storage.record_heartbeat(alive._trial_id)
    failed = []
    assert fail_stale_trials(study, 2, on_failed=failed.append) == [dead.number]
    frozen = study.get_trials()
    assert frozen[dead.number].state == TrialState.FAIL and frozen[dead.number].user_attrs[STALE]
    assert "heartbeats" in frozen[dead.number].user_attrs[FAILURE_REASON]
    assert frozen[alive.number].state == TrialState.RUNNING
    retry = frozen[-1]
    assert retry.state == TrialState.WAITING and retry.params == {} and failed[0].number == dead.number
    assert study.ask().params == {} and study.get_trials()[-1].system_attrs["fixed_params"] == {"lr": dead.params["lr"]}


def test_a_trial_that_kills_its_worker_is_retried_max_retries_times_then_failed_for_good(tmp_path):
    storage = HeartbeatJournalStorage(tmp_path / "j.journal", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="s")
    outcomes = []
    for attempt in range(3):  # the first run and two retries, each losing its worker
        trial = study.ask({"lr": optuna.distributions.FloatDistribution(0.1, 1.0)})
        assert trial.user_attrs.get(RETRY_OF) == (None if attempt == 0 else trial.number - 1)
        storage.record_heartbeat(trial._trial_id)
        time.sleep(1.5)
        assert fail_stale_trials(study, 2) == [trial.number]
        outcomes.append(study.get_trials()[trial.number])
    assert [t.user_attrs[STALE] for t in outcomes] == [True, True, False]  # the last one uses its budget
    assert "not retried: already retried 2 time(s) (max_retries=2)" in outcomes[-1].user_attrs[FAILURE_REASON]
    assert not study.get_trials(states=(TrialState.WAITING,))  # no fourth attempt
    assert counts(study.get_trials())["failed"] == 1


def test_max_retries_zero_fails_a_dead_workers_trial_at_once(tmp_path):
    storage = HeartbeatJournalStorage(tmp_path / "j.journal", heartbeat_interval=1, grace_period=1)
    study = optuna.create_study(storage=storage, study_name="s")
    trial = study.ask()
    storage.record_heartbeat(trial._trial_id)
    time.sleep(1.5)
    assert fail_stale_trials(study, 0) == [trial.number]
    assert len(study.get_trials()) == 1 and not study.get_trials()[0].user_attrs[STALE]


def test_negative_max_retries_is_one_line():
    with pytest.raises(ConfigError, match="max_retries must be >= 0"):
        load(write(SWEEP), ["max_retries=-1"])


def test_dry_run_prints_studies_and_spaces_and_trains_nothing(capsys):
    path = write(SWEEP)
    assert main(["sweep", str(path), "--dry-run", "--devices", "cpu:2", "--storage", "postgresql://u:pw@h/db"]) == 0
    out = capsys.readouterr().out
    assert "study t-soft" in out and "study t-hard" in out
    assert "attention.hidden_dim: int[16, 64] step 16 when attention.score=additive" in out
    assert "task.lr: float[0.0001, 0.01] log" in out
    assert "postgresql://u:***@h/db" in out and "pw" not in out.replace("pw@", "")
    assert not Path("outputs").exists() and not Path("mlflow.db").exists()


def test_bad_sweep_file_exits_2_with_one_line(capsys):
    assert main(["sweep", str(write(SWEEP + "bogus: 1\n"))]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and "bogus" in err and len(err.strip().splitlines()) == 1


def test_every_launch_and_worker_samples_from_its_own_seed():
    """A resumed launch continues the search: its start-up draws are not the first launch's again."""
    spec = load(write(SWEEP))
    seeds = {sampler_seed(spec, launch, worker) for launch in (1, 2, 3) for worker in (0, 1, 2)}
    assert len(seeds) == 9 and sampler_seed(spec, 2, 1) == sampler_seed(spec, 2, 1)  # distinct, reproducible

    def first_draws(launch: int) -> list[float]:
        study = optuna.create_study(sampler=make_sampler(spec, "soft", 0, parallel=False, launch=launch))
        return [study.ask().suggest_float("task.lr", 1e-4, 1e-2, log=True) for _ in range(3)]

    assert first_draws(1) == first_draws(1) and not set(first_draws(1)) & set(first_draws(2))


def test_the_documented_example_is_a_valid_sweep_file():
    """The sweep-file example in lightning_attn.sweep.spec's docstring loads and composes, as written."""
    import textwrap

    from lightning_attn.sweep import spec as sweep_spec

    doc = sweep_spec.__doc__
    block = doc[doc.index("Example::") + len("Example::") : doc.index("``when`` makes")]
    path = Path("example.yaml")
    path.write_text(textwrap.dedent(block).strip() + "\n")
    spec = load(path)  # composes every mechanism's trial config: a key the schema rejects fails here
    assert set(spec.mechanisms) == {"soft", "hard"} and spec.n_trials == 4


def test_packed_gpu_workers_each_know_how_many_share_their_gpu(tmp_path):
    devices = launch.Devices("gpu", ["0", "0", "1", "0"])
    workers = launch.Workers(tmp_path, devices, "sqlite:///x.db", storage_url=None, ddp=False, launch=1, max_restarts=0)
    seen = [(s.env["CUDA_VISIBLE_DEVICES"], s.env[launch.GPU_SHARE_ENV], s.label) for s in workers.slots]
    assert seen == [("0", "3", "cuda:0"), ("0", "3", "cuda:0"), ("1", "1", "cuda:1"), ("0", "3", "cuda:0")]


def test_ui_optuna_on_an_unreachable_storage_is_one_line_exit_3(capsys):
    assert main(["ui", "--optuna", "--storage", "postgresql://alice:s3cret@127.0.0.1:1/db"]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "postgresql://alice:***@127.0.0.1:1/db" in err and "s3cret" not in err
    assert main(["ui", "--optuna", "--storage", "nowhere/optuna.journal"]) == 2  # a missing journal: not created
    assert capsys.readouterr().err.startswith("error: no Optuna journal at nowhere/optuna.journal")
    assert not Path("nowhere").exists()


def test_a_sweep_without_a_search_space_is_a_comparison_of_seed_runs():
    from lightning_attn.config import parse_seeds
    from lightning_attn.sweep.budget import budget
    from lightning_attn.sweep.spec import comparison, is_comparison, seeds_of, study_keys

    assert parse_seeds("0-4") == [0, 1, 2, 3, 4] and parse_seeds("[0, 2]") == [0, 2] and parse_seeds("3") == [3]
    with pytest.raises(ConfigError, match="seeds=x: write a range"):
        parse_seeds("x")
    spec = comparison("translation", ["soft", "hard"], [0, 1, 2], ["trainer.max_epochs=2"])
    assert is_comparison(spec) and spec.name == "compare-translation"
    assert study_keys(spec) == ["soft+seeds", "hard+seeds"]  # no search studies
    assert budget(spec, "soft+seeds") == 3
    with pytest.raises(ConfigError, match="unknown attention 'nope'"):
        comparison("translation", ["soft", "nope"], [0])
    # a sweep file with no space at all is the same, its seeds defaulting to the sweep's seed
    variant = "{attention: hard, overrides: [attention.semi_sampling_p=0.75]}"
    Path("fixed.yaml").write_text(
        f"name: fixed\ntask: translation\nseed: 7\nmechanisms: {{soft: {{}}, hard-p75: {variant}}}\n"
    )
    searchless = load("fixed.yaml")
    assert is_comparison(searchless) and study_keys(searchless) == ["soft+seeds", "hard-p75+seeds"]
    assert budget(searchless, "hard-p75+seeds") == 1 and seeds_of(searchless) == [7]


def test_compare_dry_run_names_its_studies_and_runs(capsys):
    code = main(["compare", "attention=soft,uniform", "seeds=0-1", "--dry-run", "--devices", "cpu:2"])
    out = capsys.readouterr().out
    assert code == 0 and "a comparison without tuning of 2 mechanism(s)" in out
    assert "2 run(s) per mechanism, one per seed [0, 1]" in out and "compare-translation-uniform-seeds" in out
    assert main(["compare", "seeds=0-1", "--dry-run"]) == 2
    assert "name the mechanisms to compare" in capsys.readouterr().err


def test_a_study_key_knows_its_mechanism_and_whether_it_holds_seed_runs():
    from lightning_attn.sweep.spec import StudyKey, comparison, is_seeds, mechanism_of, study_keys

    (seeds,) = study_keys(comparison("translation", ["hard"], [0, 1], []))
    assert (seeds.mechanism, seeds.seeds) == ("hard", True) and seeds == "hard+seeds"
    search = StudyKey.of("soft", seeds=False)
    assert (search.mechanism, search.seeds) == ("soft", False) and search == "soft"
    assert mechanism_of("soft+seeds") == "soft" and is_seeds("soft+seeds") and not is_seeds("soft")
    assert {seeds: 1}["hard+seeds"] == 1  # a str still: tables and records read it as before
