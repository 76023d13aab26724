"""Config composition and the one-line errors for every kind of bad input."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from lightning_attn.cli import main
from lightning_attn.config import ConfigError, compose, flatten, group_choices


def test_defaults_are_translation_soft_on_builtin_data():
    cfg = compose()
    assert (cfg.task.name, cfg.attention.mechanism, cfg.data.kind) == ("translation", "soft", "synthetic")
    assert cfg.choices.trainer == "auto" and cfg.trainer.accelerator == "auto"


def test_group_choice_and_dotted_override():
    cfg = compose(["attention=hard", "trainer.max_epochs=3", "attention.entropy_weight=0.01"])
    assert cfg.attention.mechanism == "hard"
    assert cfg.trainer.max_epochs == 3
    assert cfg.attention.entropy_weight == 0.01
    assert cfg.attention.baseline_decay == 0.9  # schema default survives


def test_values_are_typed():
    cfg = compose(["trainer.max_epochs=3", "task.lr=1e-4", "data.n_train=10"])
    assert isinstance(cfg.trainer.max_epochs, int) and cfg.task.lr == pytest.approx(1e-4)


def test_multi30k_preset_with_root(tmp_path):
    cfg = compose(["data=multi30k", f"data.root={tmp_path}"])
    assert (cfg.data.src_lang, cfg.data.tgt_lang, cfg.data.test_split) == ("de", "en", "test_2016_flickr")


def test_every_group_choice_composes():
    for group in ("attention", "trainer", "task", "logger"):
        for choice in group_choices(group):
            assert compose([f"{group}={choice}"]).choices[group] == choice
    assert compose(["task=captioning", "model=captioner"]).model.kind == "captioner"


def test_a_task_brings_its_own_model_and_data():
    cfg = compose(["task=captioning"])
    assert (cfg.choices.model, cfg.choices.data) == ("captioner", "digits")
    assert cfg.data.canvas == 64
    assert compose(["task=captioning", "data=karpathy", "data.json=x", "data.image_root=y"]).data.kind == "karpathy"


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (
            ["task=captioning", "data=synthetic"],
            "task captioning cannot use data=synthetic; choose one of: caption_table, digits, karpathy",
        ),
        (["model=captioner"], "task translation cannot use model=captioner; choose one of: seq2seq"),
    ],
)
def test_mismatched_task_and_groups_are_refused(override, message):
    with pytest.raises(ConfigError, match=message):
        compose(override)


def test_flatten_uses_command_line_keys():
    flat = flatten(compose())
    assert flat["attention.score"] == "additive" and flat["trainer.max_epochs"] == compose().trainer.max_epochs


@pytest.mark.parametrize(
    ("override", "message"),
    [
        (["attention.temperature=2"], "unknown key 'attention.temperature'; valid keys in attention: mechanism, score"),
        (["trainer.epochs=2"], "valid keys in trainer: accelerator"),
        (["nope=1"], "unknown key 'nope'; valid keys in the top level: task, model, attention"),
        (["attention=bogus"], "unknown attention 'bogus'; choose one of: entmax15, gumbel, hard, local"),
        (
            ["data=imagenet"],
            "unknown data 'imagenet'; choose one of: caption_table, digits, hf, karpathy, multi30k, parallel, "
            "synthetic, table",
        ),
        (["trainer.max_epochs=three"], "invalid value for trainer.max_epochs"),
        (["attention.score=cosine"], "expected one of [additive, dot, general]"),
        (["data=multi30k"], "data.root needs a value"),
        (["attention.mechanism=hard"], "write attention=NAME"),
        (["max_epochs"], "expected key=value"),
        (["choices.attention=hard"], "records the group choices"),
    ],
)
def test_bad_config_names_the_key(override, message):
    with pytest.raises(ConfigError) as info:
        compose(override)
    assert message in str(info.value)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(
    "override",
    [["attention.temperature=2"], ["attention=bogus"], ["trainer.max_epochs=three"], ["data=multi30k"]],
)
def test_cli_config_error_exits_2_and_writes_nothing(override, capsys):
    before = set(Path.cwd().iterdir())
    assert main(["train", *override]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
    assert set(Path.cwd().iterdir()) == before  # no mlflow.db, no outputs/


def test_cli_data_error_exits_2_and_writes_nothing(tmp_path, capsys):
    (tmp_path / "corpus").mkdir()
    before = set(Path.cwd().iterdir())
    assert main(["train", "data=parallel", f"data.root={tmp_path / 'corpus'}"]) == 2
    err = capsys.readouterr().err
    assert "missing data file" in err and "train.de" in err
    assert set(Path.cwd().iterdir()) == before


def test_print_config_masks_passwords(capsys):
    assert main(["train", "--print-config", "logger.tracking_uri=postgresql://bob:hunter2@db:5432/ml"]) == 0
    out = capsys.readouterr().out
    assert "hunter2" not in out and "bob:***@db" in out


def test_broken_group_yaml_names_the_file(tmp_path):
    import shutil

    from lightning_attn.resources import conf_dir

    conf = tmp_path / "conf"
    shutil.copytree(conf_dir(), conf)
    (conf / "attention" / "broken.yaml").write_text("mechanism: soft\ntemperature: 3\n")
    with pytest.raises(ConfigError, match=r"broken.yaml: unknown key 'temperature'; valid keys: mechanism, score"):
        compose(["attention=broken"], root=conf)


def test_every_train_command_in_the_readme_composes():
    """The `lightning-attn train …` examples of the README and the guide's Training and Getting started pages are
    valid configs, as written (data is not read)."""
    import re
    import shlex

    root = Path(__file__).resolve().parents[1]
    readme = "\n".join((root / name).read_text() for name in ("README.md", "docs/index.md", "docs/training.md"))
    commands = re.findall(r"^\$? ?lightning-attn train((?: [^\n#]*)?)(?:#.*)?$", readme, flags=re.MULTILINE)
    assert len(commands) >= 8
    for command in commands:
        words = shlex.split(command)
        if "--resume" in words:  # `--resume RUN_ID key=value …`: the changes are keys of any run's config
            del words[words.index("--resume") + 1]
        overrides = [a for a in words if not a.startswith("--")]
        if "attention.temperature=2" in overrides:  # the README's own example of an error
            with pytest.raises(ConfigError, match="unknown key 'attention.temperature'"):
                compose(overrides)
            continue
        compose(overrides)


# ── experiment presets (conf/experiment/) ──────────────────────────────────────────────────────
def test_multi30k_experiments_choose_data_model_and_schedule(tmp_path):
    de_en = compose(["experiment=multi30k_de_en", f"data.root={tmp_path}"])
    assert (de_en.data.src_lang, de_en.data.tgt_lang, de_en.data.test_split) == ("de", "en", "test_2016_flickr")
    assert de_en.data.batch_tokens > 0 and de_en.model.decoder_hidden == 512 and de_en.task.beam_size == 5
    assert de_en.choices.experiment == "multi30k_de_en"
    en_de = compose(["experiment=multi30k_en_de", f"data.root={tmp_path}", "attention=hard"])
    assert (en_de.data.src_lang, en_de.data.tgt_lang, en_de.attention.mechanism) == ("en", "de", "hard")


def test_the_command_line_beats_the_experiment(tmp_path):
    cfg = compose(["experiment=multi30k_de_en", f"data.root={tmp_path}", "model.dropout=0.1", "task=translation"])
    assert cfg.model.dropout == pytest.approx(0.1)


def _conf_with(tmp_path, experiment: str):
    import shutil

    from lightning_attn.resources import conf_dir

    root = tmp_path / "conf"
    shutil.copytree(conf_dir(), root)
    (root / "experiment" / "mine.yaml").write_text(experiment)
    return root


def test_by_attention_sets_values_for_one_mechanism(tmp_path):
    root = _conf_with(
        tmp_path, "task: {lr: 0.01}\nby_attention:\n  hard: {task: {lr: 0.001}, attention: {entropy_weight: 0.0}}\n"
    )
    assert compose(["experiment=mine"], root=root).task.lr == pytest.approx(0.01)
    hard = compose(["experiment=mine", "attention=hard"], root=root)
    assert hard.task.lr == pytest.approx(0.001) and hard.attention.entropy_weight == 0.0


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "model: {hidden_size: 3}\n",
            r"mine\.yaml: unknown key 'model\.hidden_size'; valid keys there: kind, embed_dim",
        ),
        ("modell: {dropout: 0.1}\n", r"mine\.yaml: unknown key 'modell'; valid keys there: task, model"),
        ("defaults: {dataset: x}\n", r"defaults: unknown group 'dataset'; valid groups: task, model"),
        ("by_attention: {harder: {task: {lr: 1}}}\n", r"by_attention: unknown attention 'harder'; choose among: "),
        ("task: {lr: fast}\n", r"mine\.yaml: .*lr"),
    ],
)
def test_a_bad_experiment_file_is_one_line_naming_it(tmp_path, text, message):
    with pytest.raises(ConfigError, match=message):
        compose(["experiment=mine"], root=_conf_with(tmp_path, text))


def test_an_unknown_experiment_lists_the_choices():
    with pytest.raises(
        ConfigError,
        match="unknown experiment 'wmt'; choose one of: multi30k_de_en, multi30k_de_en_transformer, multi30k_en_de",
    ):
        compose(["experiment=wmt"])


def test_train_help_lists_every_group_and_its_choices(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["train", "--help"])
    assert exited.value.code == 0
    out = capsys.readouterr().out
    assert "config groups (pick with group=choice):" in out
    assert all(choice in out for choice in group_choices("attention"))


def test_commands_that_train_nothing_start_without_torch():
    """Only ``train --help`` reads the registries for its list of groups: ``report``, ``ui`` and the rest
    start without importing torch or Lightning (seconds on every start)."""
    code = (
        "import sys; from lightning_attn.cli import build_parser; "
        "build_parser().parse_args(['report']); print(sorted({'torch', 'lightning'} & set(sys.modules)))"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0 and proc.stdout.strip() == "[]", proc.stdout + proc.stderr


def test_seeds_are_written_as_compare_takes_them():
    assert list(compose(["seeds=0-2"]).seeds) == [0, 1, 2]
    assert list(compose(["seeds=0,2"]).seeds) == [0, 2] and list(compose(["seeds=[4, 5]"]).seeds) == [4, 5]
    assert list(compose(["seeds=[]"]).seeds) == []
    with pytest.raises(ConfigError, match=r"^seeds=x: write a range \(0-4\), a list \(0,1,2\) or one seed \(3\)$"):
        compose(["seeds=x"])


def test_the_experiment_is_mlflows_own_variable_unless_named(monkeypatch):
    assert compose([]).logger.experiment_name == "lightning-attn"
    monkeypatch.setenv("MLFLOW_EXPERIMENT_NAME", "mine")
    assert compose([]).logger.experiment_name == "mine"
    assert compose(["logger.experiment_name=theirs"]).logger.experiment_name == "theirs"
