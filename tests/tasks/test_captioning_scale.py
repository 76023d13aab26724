"""Captioning at a dataset's real size: memory during training does not grow with the number of images, a
frozen encoder's feature cache trains the decoder, a corrupt image is named before any training."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from ..data.test_image_caches import make_images

SIZE = 128
SMALL = [
    "model.channels=[8,8,8,8]",
    "model.embed_dim=8",
    "model.hidden=16",
    "data.batch_size=50",
    "trainer.max_epochs=1",
    "trainer.limit_val_batches=1",
    "trainer.limit_test_batches=1",
    "trainer.enable_progress_bar=false",
    "task.attention_pictures_every=0",
    "task.beam_size=1",
    "speed.latency_calls_b1=0",
    "speed.latency_calls_batch=0",
    "data.min_count=1",
]


def train_cli(json_path: Path, store: str, *extra: str) -> subprocess.CompletedProcess:
    cmd = [
        sys.executable,
        "-m",
        "lightning_attn",
        "train",
        "task=captioning",
        "data=karpathy",
        f"data.json={json_path}",
        f"data.image_root={json_path.parent / 'images'}",
        f"data.image_size={SIZE}",
        f"logger.tracking_uri={store}",
        *SMALL,
        *extra,
    ]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=600)


def only_run(store: str):
    client = MlflowClient(store)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert len(runs) == 1
    return runs[0]


@pytest.mark.slow  # a memory target, measured side by side: the -m slow runs, not CI's
def test_peak_memory_does_not_grow_with_the_number_of_images(tmp_path):
    n = 250
    peaks = {}
    for count in (n, 4 * n):
        json_path = make_images(tmp_path / f"set{count}", count, size=SIZE, seed=count)
        store = f"sqlite:///{tmp_path / f'{count}.db'}"
        done = train_cli(json_path, store)
        assert done.returncode == 0, done.stderr[-2000:]
        run = only_run(store)
        peaks[count] = run.data.metrics["speed/peak_rss_mb"]
    # what holding the decoded images in memory would add for the 3n extra images: uint8 + float32 copies
    data_growth_mb = 3 * n * SIZE * SIZE * 3 * (1 + 4) / 2**20
    assert data_growth_mb > 170
    # far less than the data: images are read as batches need them (run-to-run noise is about +-50 MB)
    assert peaks[4 * n] - peaks[n] < 100, peaks


@pytest.mark.e2e
def test_a_frozen_encoders_features_are_cached_and_trained_on(tmp_path):
    json_path = make_images(tmp_path / "set", 60, size=32)
    store = f"sqlite:///{tmp_path / 'f.db'}"
    args = ["data.image_size=32", "model.freeze_encoder=true", "model.cache_features=true", "seed=3"]
    first = train_cli(json_path, store, *args)
    assert first.returncode == 0, first.stderr[-2000:]
    assert "built the feature cache" in first.stderr
    second = train_cli(json_path, store, *args)
    assert second.returncode == 0 and "using the feature cache" in second.stderr  # not recomputed
    assert len(list((json_path.parent / "images" / ".lightning_attn_cache").glob("features-*.json"))) == 1


@pytest.mark.e2e
def test_a_corrupt_image_in_a_large_set_stops_the_run_before_training(tmp_path):
    json_path = make_images(tmp_path / "set", 800, size=16)
    (json_path.parent / "images" / "img777.jpg").write_bytes(b"garbage")
    store = f"sqlite:///{tmp_path / 'c.db'}"
    done = train_cli(json_path, store, "data.image_size=16", "model.channels=[8,8]", "data.num_workers=2")
    assert done.returncode == 2
    assert "img777.jpg: cannot read image" in done.stderr.strip().splitlines()[-1]
    client = MlflowClient(store)
    assert not client.search_runs([e.experiment_id for e in client.search_experiments()])  # nothing trained
