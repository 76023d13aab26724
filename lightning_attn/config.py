"""The configuration schema and how a run's config is composed.

The dataclasses below (and each mechanism's config next to its code in :mod:`lightning_attn.attention`)
are the **schema and the single source of every default**. YAML files in ``conf/<group>/`` pick a
schema and override what they must; ``key=value`` arguments override the YAML. Composition::

    conf/config.yaml  defaults: {task: translation, attention: soft, ...}
      + group=choice                 ->  conf/<group>/<choice>.yaml merged onto its schema
      + dotted.key=value             ->  merged onto the result, type-checked

Anything that does not fit — an unknown key, an unknown choice, a value of the wrong type, a
required value left out — raises :class:`ConfigError` with one line naming the key and what is
valid, before anything is written.
"""

from __future__ import annotations

import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml
from omegaconf import MISSING, DictConfig, OmegaConf
from omegaconf.errors import ConfigKeyError, OmegaConfBaseException, ValidationError

from .attention import MECHANISMS
from .resources import conf_dir


class ConfigError(ValueError):
    """A config that cannot be used; the message is one line meant for the user."""


# ─── task ──────────────────────────────────────────────────────────────────────────────────────
@dataclass
class TaskConfig:
    """What every task has: optimiser, loss smoothing, decoding."""

    name: str = MISSING
    lr: float = 2e-3
    weight_decay: float = 0.0
    label_smoothing: float = 0.0
    val_beam_size: int = 1  # validation decodes greedily by default: cheap and tracks the test metric
    beam_size: int = 5  # test decoding; 1 = greedy
    length_penalty: float = 1.0  # beam score = log p / length ** length_penalty
    max_decode_len: int = 100  # hard cap on generated tokens


@dataclass
class TranslationTaskConfig(TaskConfig):
    """Training objective, optimiser and decoding for translation."""

    name: str = "translation"
    decode_len_ratio: float = 2.0  # per batch: at most ratio x longest source + 5 tokens
    # alignment pictures (target words x source words) in MLflow: every N epochs and at the last one
    # trained (wherever early stopping ends the run); 0 turns them off
    attention_pictures_every: int = 4
    attention_pictures: int = 2  # how many validation sentences get a picture


@dataclass
class CaptioningTaskConfig(TaskConfig):
    """Training objective, optimiser and decoding for image captioning."""

    name: str = "captioning"
    lr: float = 5e-4  # at 2e-3 the CNN never learnt digit identity (digit-word NLL stayed at ln 10)
    beam_size: int = 3
    max_decode_len: int = 30
    # λ of Show-Attend-Tell's doubly stochastic penalty Σ_i (1 − Σ_t α_ti)²; 0 by default because the
    # built-in scenes leave most regions empty (on COCO/Flickr the paper's 1.0 is the usual choice)
    doubly_stochastic: float = 0.0
    attention_pictures_every: int = 1  # attention pictures in MLflow every N epochs and at the last; 0: off
    attention_pictures: int = 4  # how many validation images get a picture


# ─── model ─────────────────────────────────────────────────────────────────────────────────────
@dataclass
class Seq2SeqConfig:
    """Bidirectional GRU encoder, attention GRU decoder."""

    kind: str = "seq2seq"
    embed_dim: int = 64
    encoder_hidden: int = 64  # per direction; the decoder attends over 2 x this
    decoder_hidden: int = 128  # = 2 x encoder_hidden, so attention.score=dot works out of the box
    dropout: float = 0.1


@dataclass
class CaptionerConfig:
    """Show-Attend-Tell: CNN grid encoder (from scratch, or a torchvision ResNet), attention LSTM decoder."""

    kind: str = "captioner"
    encoder: str = "cnn"  # cnn (from scratch) | resnet (needs torchvision)
    channels: list[int] = field(default_factory=lambda: [32, 64, 128, 128])  # cnn: each block halves the image
    resnet_depth: int = 18  # resnet: 18 | 34 | 50 | 101 | 152; its grid is image_size / 32
    resnet_weights: str | None = None  # resnet: a local state_dict file; nothing is downloaded
    freeze_encoder: bool = False  # resnet: keep the (pretrained) weights fixed
    embed_dim: int = 64
    hidden: int = 256
    dropout: float = 0.1


# ─── data ──────────────────────────────────────────────────────────────────────────────────────
@dataclass
class SyntheticDataConfig:
    """The built-in synthetic language pair (see :mod:`lightning_attn.data.synthetic`)."""

    kind: str = "synthetic"
    n_train: int = 20000
    n_val: int = 500
    n_test: int = 1000
    corpus_seed: int = 1234  # the corpus is the same whatever the training seed
    max_adjectives: int = 3
    p_prepositional: float = 0.8  # long sentences (15.7 source words on average) defeat the uniform control
    p_adverb: float = 0.5
    lexicon_share: float = 1.0  # the share of each word list used: a smaller vocabulary is a smaller task
    batch_size: int = 64
    num_workers: int = 0  # data lives in memory: worker processes only add start-up time


@dataclass
class ParallelDataConfig:
    """Parallel text files ``{root}/{split}.{lang}[.gz]`` (Multi30k, IWSLT, your own)."""

    kind: str = "parallel"
    root: str = MISSING
    src_lang: str = "de"
    tgt_lang: str = "en"
    train_split: str = "train"
    val_split: str = "val"
    test_split: str = "test"
    bpe_vocab_size: int = 8000
    lowercase: bool = False
    max_train_len: int = 60  # drop training pairs longer than this many subwords on either side
    cache_dir: str | None = None  # vocabulary cache; default: next to the data, else ~/.cache
    batch_size: int = 64
    num_workers: int = 0


@dataclass
class DigitsDataConfig:
    """Built-in digit scenes (see :mod:`lightning_attn.data.digits`)."""

    kind: str = "digits"
    n_train: int = 12000
    n_val: int = 500
    n_test: int = 1000
    scene_seed: int = 1234
    canvas: int = 64
    cell: int = 16  # 64/16: a 4x4 layout, matching the encoder's 4x4 grid
    min_digits: int = 2
    max_digits: int = 4
    clutter: int = 0  # digit fragments in empty cells
    batch_size: int = 64
    num_workers: int = 0


@dataclass
class KarpathyDataConfig:
    """COCO / Flickr8k / Flickr30k in the Karpathy-split JSON format."""

    kind: str = "karpathy"
    json: str = MISSING  # dataset_coco.json, dataset_flickr8k.json, ...
    image_root: str = MISSING
    image_size: int = 128
    min_count: int = 5  # words rarer than this in the train captions become <unk>
    max_caption_len: int = 30  # longer training captions are dropped
    skip_bad_images: bool = False  # count and skip missing/corrupt images instead of stopping
    batch_size: int = 32
    num_workers: int = 0


# ─── trainer / logger ──────────────────────────────────────────────────────────────────────────
@dataclass
class TrainerConfig:
    """Passed to ``lightning.Trainer`` as keyword arguments."""

    accelerator: str = "cpu"
    devices: Any = 1
    strategy: str = "auto"
    num_nodes: int = 1
    precision: str = "32-true"
    max_epochs: int = 30  # the cap: early_stopping ends a run sooner, once it has converged
    max_time: str | None = None  # "DD:HH:MM:SS"
    gradient_clip_val: float | None = 1.0
    accumulate_grad_batches: int = 1
    limit_train_batches: Any = None
    limit_val_batches: Any = None
    limit_test_batches: Any = None
    log_every_n_steps: int = 50
    deterministic: bool = False
    enable_progress_bar: bool = True
    enable_model_summary: bool = True
    enable_checkpointing: bool = True


@dataclass
class MLflowLoggerConfig:
    """MLflow tracking through Lightning's ``MLFlowLogger``."""

    kind: str = "mlflow"
    tracking_uri: str | None = None  # None: $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db in the working dir
    experiment_name: str = "lightning-attn"
    run_name: str | None = None
    log_model: bool = False  # also upload the best checkpoint as an MLflow artifact


@dataclass
class StabilityConfig:
    """Stability measurements, and when a run counts as diverged (it then stops with the reason recorded)."""

    max_loss: float = 1e4  # a training loss above this (or NaN/inf) stops the run
    monitor: bool = True  # log stability/* (gradient norms, loss spikes) every epoch
    spike_factor: float = 3.0  # a loss above this x the running median counts as a spike
    spike_window: int = 50  # steps in that running median


@dataclass
class EarlyStoppingConfig:
    """Train to convergence (Lightning's ``EarlyStopping``, see :mod:`lightning_attn.tracking.convergence`):
    stop once neither the validation metric nor the validation loss has made progress for ``patience``
    epochs; ``trainer.max_epochs`` is only the cap. Every run records how it ended (``run/epochs``,
    ``run/best_epoch``, ``run/converged``, tag ``stop_reason``)."""

    enabled: bool = True  # false: train to trainer.max_epochs (the run still records whether it converged)
    monitor: str | None = None  # default: the task's validation metric (val/bleu, val/bleu4)
    patience: int = 3  # epochs in a row without progress that make a plateau
    min_delta: float = 1.0  # the metric makes progress only by beating its best by more (its units: BLEU points)
    # an epoch whose validation loss still fell counts as progress too: a metric still flat at 0 in the
    # first epochs (hard attention before REINFORCE has learnt) is not a plateau; null: the metric alone
    loss_monitor: str | None = "val/nll"
    loss_min_delta: float = 0.05  # nats below the lowest loss so far


@dataclass
class SpeedConfig:
    """Throughput while training and the inference-latency pass after testing (:mod:`lightning_attn.tracking.speed`)."""

    monitor: bool = True  # log speed/* (throughput, step times, peak memory) every epoch
    latency_calls_b1: int = 20  # timed greedy decodes of one example (0: skip)
    latency_calls_batch: int = 5  # timed greedy decodes of a data.batch_size batch (0: skip)
    latency_warmup: int = 2  # untimed calls before each


@dataclass
class RunConfig:
    """One training run. Group fields hold whichever schema the group choice selected."""

    task: Any = None
    model: Any = None
    attention: Any = None
    data: Any = None
    trainer: Any = None
    logger: Any = None
    stability: StabilityConfig = field(default_factory=StabilityConfig)
    speed: SpeedConfig = field(default_factory=SpeedConfig)
    early_stopping: EarlyStoppingConfig = field(default_factory=EarlyStoppingConfig)
    seed: int = 0
    seeds: list[int] = field(default_factory=list)  # e.g. [0,1,2]: one run per seed under a parent with mean/std/CI
    output_dir: str = "outputs"  # checkpoints go to <output_dir>/<mlflow run id>/
    choices: dict[str, str] = field(default_factory=dict)  # filled in: which YAML each group came from


#: group -> (field in the YAML that selects the schema, {value: schema}); None = one schema for all files
GROUPS: dict[str, tuple[str | None, dict[str, type] | type]] = {
    "task": ("name", {"translation": TranslationTaskConfig, "captioning": CaptioningTaskConfig}),
    "model": ("kind", {"seq2seq": Seq2SeqConfig, "captioner": CaptionerConfig}),
    "attention": ("mechanism", {name: cfg for name, (_, cfg) in MECHANISMS.items()}),
    "data": (
        "kind",
        {
            "synthetic": SyntheticDataConfig,
            "parallel": ParallelDataConfig,
            "digits": DigitsDataConfig,
            "karpathy": KarpathyDataConfig,
        },
    ),
    "trainer": (None, TrainerConfig),
    "logger": ("kind", {"mlflow": MLflowLoggerConfig}),
}


#: what each task can be combined with: group -> the schema selector values it accepts
TASK_NEEDS: dict[str, dict[str, tuple[str, ...]]] = {
    "translation": {"model": ("seq2seq",), "data": ("synthetic", "parallel")},
    "captioning": {"model": ("captioner",), "data": ("digits", "karpathy")},
}


def group_choices(group: str, root: Path | None = None) -> list[str]:
    """The choices a group offers: the YAML files in ``conf/<group>/``."""
    return sorted(p.stem for p in ((root or conf_dir()) / group).glob("*.yaml"))


def first_line(e: OmegaConfBaseException) -> str:
    """OmegaConf's message without its multi-line context."""
    return str(e).splitlines()[0]


def read_yaml(path: Path) -> dict:
    """A YAML mapping from ``path``; a syntax error names the file, line and column."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror or e})") from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"{path}: not UTF-8 ({e.reason} at byte {e.start})") from None
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        where = f"{path}:{mark.line + 1}:{mark.column + 1}" if mark else str(path)
        context = f" ({e.context})" if e.context else ""
        raise ConfigError(f"{where}: invalid YAML: {e.problem}{context}") from None
    except yaml.YAMLError as e:
        raise ConfigError(f"{path}: invalid YAML ({str(e).splitlines()[0]})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: expected a mapping of keys to values")
    return data


def valid_keys(node: Any) -> str:
    return ", ".join(str(k) for k in node) if isinstance(node, DictConfig) else "(none: not a section)"


def unknown_key(data: Any, schema: Any, where: str = "") -> tuple[str, str, list[str]] | None:
    """The first key in ``data`` that its schema does not have, as ``(key, where, valid keys there)``.

    ``schema`` is a dataclass whose fields may hold dataclasses, ``dict[str, X]`` or ``list[X]`` (walked
    into); ``where`` reads like ``space['model.encoder_hidden']`` (keys of user mappings may hold dots).
    """
    origin = typing.get_origin(schema)
    if dataclasses.is_dataclass(schema) and isinstance(data, dict):
        hints = typing.get_type_hints(schema)
        for key, value in data.items():
            if key not in hints:
                return str(key), where or "the top level", list(hints)
            found = unknown_key(value, hints[key], f"{where}.{key}" if where else str(key))
            if found:
                return found
    elif origin is dict and isinstance(data, dict):
        inner = typing.get_args(schema)[1]
        for key, value in data.items():
            found = unknown_key(value, inner, f"{where}[{key!r}]")
            if found:
                return found
    elif origin is list and isinstance(data, list):
        inner = typing.get_args(schema)[0]
        for i, value in enumerate(data):
            found = unknown_key(value, inner, f"{where}[{i}]")
            if found:
                return found
    return None


def _load_group(group: str, choice: str, root: Path) -> DictConfig:
    path = root / group / f"{choice}.yaml"
    if not path.is_file():
        raise ConfigError(f"unknown {group} {choice!r}; choose one of: {', '.join(group_choices(group, root))}")
    data = read_yaml(path)
    data.pop("defaults", None)  # a task's default choices for other groups, read by compose()
    selector, schemas = GROUPS[group]
    if selector is None:
        schema = schemas
    else:
        value = data.get(selector)
        if value not in schemas:
            raise ConfigError(f"{path}: {selector} must be one of {', '.join(schemas)}, got {value!r}")
        schema = schemas[value]
    node = OmegaConf.structured(schema)
    try:
        return OmegaConf.merge(node, data)
    except ConfigKeyError as e:
        raise ConfigError(f"{path}: unknown key {e.key!r}; valid keys: {valid_keys(node)}") from None
    except ValidationError as e:
        raise ConfigError(f"{path}: {e.full_key}: {first_line(e)}") from None


def _check_key(cfg: DictConfig, dotted: str) -> None:
    """Raise a ConfigError naming the first unknown part of ``dotted`` and the keys valid there."""
    node: Any = cfg
    parts = dotted.split(".")
    if parts[0] == "choices":
        raise ConfigError(f"{dotted} records the group choices; write GROUP=NAME instead (e.g. attention=hard)")
    for depth, part in enumerate(parts):
        where = ".".join(parts[:depth]) or "the top level"
        if not isinstance(node, DictConfig):
            raise ConfigError(f"unknown key {dotted!r}: {where} is a value, not a section")
        if part not in node.keys():  # noqa: SIM118 — `in node` is False for keys whose value is MISSING
            raise ConfigError(f"unknown key {dotted!r}; valid keys in {where}: {valid_keys(node)}")
        node = node._get_node(part)
    group = parts[0]
    if group in GROUPS and len(parts) == 2 and parts[1] == GROUPS[group][0]:
        raise ConfigError(f"{dotted} is set by the group choice; write {group}=NAME instead")


def compose(overrides: list[str] | tuple[str, ...] = (), root: Path | None = None) -> DictConfig:
    """Compose the run config from ``conf/`` and ``key=value`` overrides.

    Args:
        overrides: ``group=choice`` (e.g. ``attention=hard``) and ``dotted.key=value``
            (e.g. ``trainer.max_epochs=3``).
        root: the config folder; the packaged ``conf/`` by default.

    Raises:
        ConfigError: one line naming the offending key and the valid keys or choices.
    """
    root = root or conf_dir()
    defaults = read_yaml(root / "config.yaml")
    choices = dict(defaults.pop("defaults", {}))
    explicit: dict[str, str] = {}
    dotted: list[tuple[str, str]] = []
    for item in overrides:
        key, sep, value = item.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ConfigError(f"cannot read override {item!r}: expected key=value (e.g. attention=hard)")
        if key in GROUPS:
            explicit[key] = value
        else:
            dotted.append((key, value))
    # the task's YAML names its own default model/data; the command line still wins
    task_file = root / "task" / f"{explicit.get('task', choices.get('task'))}.yaml"
    if task_file.is_file():
        choices.update(read_yaml(task_file).get("defaults", {}))
    choices.update(explicit)

    cfg = OmegaConf.structured(RunConfig)
    for group in GROUPS:
        if group not in choices:
            raise ConfigError(f"{root / 'config.yaml'}: no default for group {group!r}")
        cfg[group] = _load_group(group, choices[group], root)
    cfg.choices = choices
    for group, accepted in TASK_NEEDS[cfg.task.name].items():
        selector = GROUPS[group][0]
        if cfg[group][selector] not in accepted:
            valid = [
                c for c in group_choices(group, root) if read_yaml(root / group / f"{c}.yaml").get(selector) in accepted
            ]
            raise ConfigError(
                f"task {cfg.task.name} cannot use {group}={choices[group]}; choose one of: {', '.join(valid)}"
            )
    try:
        cfg = OmegaConf.merge(cfg, defaults)
    except OmegaConfBaseException as e:
        raise ConfigError(f"{root / 'config.yaml'}: {first_line(e)}") from None
    OmegaConf.set_struct(cfg, True)

    for key, value in dotted:
        _check_key(cfg, key)
        try:
            cfg = OmegaConf.merge(cfg, OmegaConf.from_dotlist([f"{key}={value}"]))
        except OmegaConfBaseException as e:
            raise ConfigError(f"invalid value for {key}: {first_line(e)}") from None

    missing = sorted(OmegaConf.missing_keys(cfg))
    if missing:
        raise ConfigError(f"{missing[0]} needs a value: add {missing[0]}=... to the command line")
    try:
        OmegaConf.resolve(cfg)
    except OmegaConfBaseException as e:
        raise ConfigError(f"cannot resolve the config: {first_line(e)}") from None
    return cfg


def to_container(cfg: DictConfig) -> dict:
    """Plain nested dict of a composed config (enums as strings)."""
    return OmegaConf.to_container(cfg, resolve=True, enum_to_str=True)


def to_yaml(cfg: DictConfig) -> str:
    return OmegaConf.to_yaml(OmegaConf.create(to_container(cfg)))


def flatten(cfg: DictConfig | dict, prefix: str = "") -> dict[str, Any]:
    """``{"a": {"b": 1}} -> {"a.b": 1}``: the keys a user types on the command line."""
    data = to_container(cfg) if isinstance(cfg, DictConfig) else cfg
    flat: dict[str, Any] = {}
    for key, value in data.items():
        name = f"{prefix}{key}"
        if isinstance(value, dict) and value:
            flat.update(flatten(value, name + "."))
        else:
            flat[name] = value
    return flat


def section(cfg: DictConfig, group: str) -> dict:
    """One group as a plain dict (what constructors take)."""
    return to_container(cfg[group])


__all__ = [
    "GROUPS",
    "ConfigError",
    "MLflowLoggerConfig",
    "ParallelDataConfig",
    "RunConfig",
    "Seq2SeqConfig",
    "SyntheticDataConfig",
    "TrainerConfig",
    "TranslationTaskConfig",
    "compose",
    "flatten",
    "group_choices",
    "to_yaml",
]
