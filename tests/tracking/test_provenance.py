"""What every run and experiment records so that MLflow's UI opens on the work: the experiment's kind, each
run's source command and git commit, its data as dataset inputs; a sweep parent's description; Optuna's
objective names."""

from __future__ import annotations

import gzip
import json
import subprocess
from pathlib import Path

import optuna
import pytest
from mlflow import MlflowClient
from mlflow.entities import Dataset, DatasetInput, InputTag

from lightning_attn.config import compose, section
from lightning_attn.sweep import spec as sweep_spec
from lightning_attn.sweep.launch import Devices
from lightning_attn.sweep.runs import create_child_run, open_parent_runs, parent_note
from lightning_attn.sweep.storage import PARENT_RUN
from lightning_attn.sweep.studies import Sweep, open_studies
from lightning_attn.tracking import ensure_experiment
from lightning_attn.tracking import tags as T
from lightning_attn.tracking.datasets import evaluation_input, record_children_datasets, training_inputs
from lightning_attn.tracking.mlflow import experiment_links
from lightning_attn.tracking.provenance import COMPARE, TRAIN, source_tags
from lightning_attn.train import train

from ..helpers import tiny

SIZES = {"train": 96, "val": 16, "test": 16}


def git_repo(folder: Path) -> str:
    """``folder`` as a git repository with one commit; the commit."""
    git = ["git", "-C", str(folder), "-c", "user.name=t", "-c", "user.email=t@example.org"]
    subprocess.run([*git, "init", "-q"], check=True)
    subprocess.run([*git, "commit", "-q", "--allow-empty", "-m", "first"], check=True)
    return subprocess.run([*git, "rev-parse", "HEAD"], capture_output=True, text=True, check=True).stdout.strip()


def by_context(run) -> dict[str, Dataset]:
    return {i.tags[0].value: i.dataset for i in run.inputs.dataset_inputs if i.tags[0].key == T.DATA_CONTEXT}


# ─── experiments ───────────────────────────────────────────────────────────────────────────────
def test_experiments_are_of_training_runs_and_the_ui_links_open_on_them(tmp_path):
    uri = f"sqlite:///{tmp_path}/mlflow.db"
    created = ensure_experiment(uri, "new")
    client = MlflowClient(uri)
    assert client.get_experiment(created).tags[T.EXPERIMENT_KIND] == T.KIND_TRAINING == "custom_model_development"
    earlier = client.create_experiment("earlier")  # made before the toolkit set a kind: marked at its next run
    chosen = client.create_experiment("chosen", tags={T.EXPERIMENT_KIND: "genai_development"})  # someone's choice
    assert ensure_experiment(uri, "earlier") == earlier and ensure_experiment(uri, "chosen") == chosen
    assert client.get_experiment(earlier).tags[T.EXPERIMENT_KIND] == T.KIND_TRAINING
    assert client.get_experiment(chosen).tags[T.EXPERIMENT_KIND] == "genai_development"
    # `lightning-attn ui` prints a link per experiment of training runs, open on its runs (not GenAI's, not Default)
    links = dict(experiment_links(uri, "http://127.0.0.1:5000/"))
    assert links == {
        name: f"http://127.0.0.1:5000/#/experiments/{i}?workflowType=machine_learning"
        for name, i in (("new", created), ("earlier", earlier))
    }
    assert experiment_links(f"sqlite:///{tmp_path}/none.db", "http://h") == [] and not (tmp_path / "none.db").exists()


# ─── source and commit ─────────────────────────────────────────────────────────────────────────
def test_source_tags_name_the_command_and_the_commit_of_a_git_folder(tmp_path):
    assert source_tags(TRAIN, tmp_path) == {T.SOURCE_NAME: "lightning-attn train", T.SOURCE_TYPE: "LOCAL"}
    repo = tmp_path / "repo"
    repo.mkdir()
    commit = git_repo(repo)
    (repo / "sub").mkdir()
    assert source_tags(COMPARE, repo / "sub") == {
        T.SOURCE_NAME: "lightning-attn compare",
        T.SOURCE_TYPE: "LOCAL",
        T.GIT_COMMIT: commit,
    }


def test_a_training_run_records_its_source_commit_and_data():
    commit = git_repo(Path.cwd())  # the folder it runs in is a git repository
    cfg = compose(tiny())
    result = train(cfg)
    client = MlflowClient(result.tracking_uri)
    run = client.get_run(result.run_id)
    assert run.data.tags[T.SOURCE_NAME] == "lightning-attn train" and run.data.tags[T.GIT_COMMIT] == commit
    assert client.get_experiment(run.info.experiment_id).tags[T.EXPERIMENT_KIND] == T.KIND_TRAINING
    found = by_context(run)
    assert set(found) == {"train", "validation", "test"}
    assert {c: json.loads(d.profile)["examples"] for c, d in found.items()} == dict(train=96, validation=16, test=16)
    assert {d.name for d in found.values()} == {"synthetic"}
    assert json.loads(found["train"].source) == {
        "tags": {"source": "built-in", "generator": "lightning_attn.data.synthetic"}
    }
    expected = training_inputs(section(cfg, "data"), "synthetic", SIZES)  # the digest is stable: the same again
    assert [found[i.tags[0].value].digest for i in expected] == [i.dataset.digest for i in expected]


# ─── datasets ──────────────────────────────────────────────────────────────────────────────────
def test_built_in_data_is_named_by_its_generator_and_digested_by_its_settings():
    data = section(compose(tiny()), "data")
    inputs = training_inputs(data, "synthetic", SIZES)
    assert [i.tags[0].value for i in inputs] == ["train", "validation", "test"]
    assert [json.loads(i.dataset.profile) for i in inputs] == [{"examples": n} for n in SIZES.values()]
    assert all(i.dataset.source_type == "code" for i in inputs)  # MLflow's source of data made by code
    digests = [i.dataset.digest for i in inputs]
    assert len(set(digests)) == 3 and all(len(d) == 8 for d in digests)  # one dataset per split
    served = training_inputs(data | {"batch_size": 3, "num_workers": 2}, "synthetic", SIZES)
    assert [i.dataset.digest for i in served] == digests  # how batches are served is not the data
    other = training_inputs(data | {"corpus_seed": data["corpus_seed"] + 1}, "synthetic", SIZES)
    assert not {i.dataset.digest for i in other} & set(digests)


def test_parallel_text_is_named_by_its_folder_and_digested_by_its_files(tmp_path):
    root = tmp_path / "my-corpus"
    root.mkdir()
    for split in ("train", "val", "test"):
        (root / f"{split}.de").write_text(f"ein {split}\n")
        with gzip.open(root / f"{split}.en.gz", "wt") as f:
            f.write(f"a {split}\n")
    data = {
        "kind": "parallel",
        "root": str(root),
        "src_lang": "de",
        "tgt_lang": "en",
        "train_split": "train",
        "val_split": "val",
        "test_split": "test",
    }
    inputs = training_inputs(data, "parallel", SIZES)
    assert {i.dataset.name for i in inputs} == {"my-corpus"}  # a generic choice: the folder says which data
    assert {i.dataset.name for i in training_inputs(data, "multi30k", SIZES)} == {"multi30k"}
    assert all(i.dataset.source_type == "local" and json.loads(i.dataset.source) == {"uri": str(root)} for i in inputs)
    assert json.loads(inputs[0].dataset.profile) == {"examples": 96, "files": "train.de, train.en.gz"}
    (root / "train.de").write_text("ein anderer Satz\n")
    changed = training_inputs(data, "parallel", SIZES)
    assert changed[0].dataset.digest != inputs[0].dataset.digest  # the train files changed
    assert [i.dataset.digest for i in changed[1:]] == [i.dataset.digest for i in inputs[1:]]  # the others did not
    scored = evaluation_input(data, "parallel", None, (str(root / "val.de"), str(root / "val.en.gz")), 16)
    assert scored.dataset.name == "val.de -> val.en.gz" and scored.tags[0].value == "test"


def test_karpathy_data_is_digested_by_its_json_per_split(tmp_path):
    path = tmp_path / "dataset_flickr8k.json"
    path.write_text(json.dumps({"images": []}))
    data = {"kind": "karpathy", "json": str(path), "image_root": str(tmp_path)}
    inputs = training_inputs(data, "karpathy", SIZES)
    assert {i.dataset.name for i in inputs} == {"dataset_flickr8k"} and len({i.dataset.digest for i in inputs}) == 3
    assert json.loads(inputs[0].dataset.source) == {"uri": str(path)}


def test_a_parent_run_records_the_datasets_of_its_children(tmp_path):
    client = MlflowClient(f"sqlite:///{tmp_path}/mlflow.db")
    experiment = client.create_experiment("e")
    parent = client.create_run(experiment).info.run_id
    for digest in ("aaaa1111", "aaaa1111", "bbbb2222"):  # two children on the same data, one on other data
        child = client.create_run(experiment, tags={T.PARENT: parent}).info.run_id
        dataset = Dataset("synthetic", digest, "code", "{}", profile='{"examples": 96}')
        client.log_inputs(child, datasets=[DatasetInput(dataset, [InputTag(T.DATA_CONTEXT, "train")])])
    record_children_datasets(client, experiment, parent)
    assert sorted(i.dataset.digest for i in client.get_run(parent).inputs.dataset_inputs) == ["aaaa1111", "bbbb2222"]


# ─── sweeps ────────────────────────────────────────────────────────────────────────────────────
def test_sweep_parent_runs_say_what_they_compare_and_trials_inherit_their_source(tmp_path):
    spec = sweep_spec.comparison("translation", ["soft", "hard"], [0, 1], name="cmp")
    sweep = Sweep(spec, tmp_path, None, f"sqlite:///{tmp_path}/mlflow.db", Devices("cpu", ["0"]))
    open_studies(sweep, optuna.storages.InMemoryStorage())
    open_parent_runs(sweep)
    client = MlflowClient(sweep.tracking_uri)
    study = sweep.studies["soft+seeds"]
    parent = client.get_run(study.user_attrs[PARENT_RUN])
    note = parent.data.tags[T.NOTE]
    assert note.startswith("Comparison `cmp`: **soft** attention (`attention=soft`) on translation, as configured")
    assert "trained once per seed (0, 1)" in note and note.endswith("Compared with **hard**.")
    assert parent.data.tags[T.SOURCE_NAME] == "lightning-attn compare"
    child = create_child_run(
        sweep.tracking_uri, "cmp", study, mechanism="soft", trial=study.ask(), seed=0, device="cpu", worker=0
    )
    assert client.get_run(child).data.tags[T.SOURCE_NAME] == "lightning-attn compare"


def test_a_search_study_note_names_its_space_and_objectives():
    body = {
        "name": "s",
        "task": "translation",
        "mechanisms": {"soft": {}, "hard": {}, "uniform": {}},
        "n_trials": 3,
        "space": {"task.lr": {"type": "float", "low": 1e-3, "high": 1e-2, "log": True}},
    }
    note = parent_note(sweep_spec.from_dict(body, "s.yaml"), "hard")
    assert note == (
        "Sweep `s`: **hard** attention (`attention=hard`) on translation: 3 trials searching `task.lr` "
        "float[0.001, 0.01] log, to maximize `val/bleu`; each child run is one trial. Compared with "
        "**soft**, **uniform**."
    )


TWO_OBJECTIVES = [("val/bleu", "maximize"), ("speed/infer_latency_ms_p50_b1", "minimize")]


@pytest.mark.parametrize("objectives", [None, TWO_OBJECTIVES])
def test_optuna_studies_name_their_objectives(tmp_path, objectives):
    body = {
        "name": "o",
        "task": "translation",
        "mechanisms": {"soft": {}},
        "n_trials": 2,
        "space": {"task.lr": {"type": "float", "low": 1e-3, "high": 1e-2}},
    }
    if objectives:
        body["objectives"] = [{"metric": m, "direction": d} for m, d in objectives]
    spec = sweep_spec.from_dict(body, "o.yaml")
    sweep = Sweep(spec, tmp_path, None, f"sqlite:///{tmp_path}/mlflow.db", Devices("cpu", ["0"]))
    storage = optuna.storages.InMemoryStorage()
    open_studies(sweep, storage)
    expected = [m for m, _ in objectives] if objectives else ["val/bleu"]
    assert optuna.load_study(study_name="o-soft", storage=storage).metric_names == expected
    open_studies(sweep, storage, resume=True)  # a resumed sweep keeps them
    assert optuna.load_study(study_name="o-soft", storage=storage).metric_names == expected
