"""``lightning-attn evaluate``: a trained run scored again from its checkpoint and vocabularies, exactly."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from lightning_attn import cli
from lightning_attn.config import compose
from lightning_attn.data.synthetic import SyntheticDataConfig, generate_corpus
from lightning_attn.evaluate import EvaluateError, evaluate
from lightning_attn.tracking import tags as T
from lightning_attn.train import train

from .helpers import tiny

pytestmark = pytest.mark.e2e

RUN = tiny(
    "data.n_train=200",
    "data.n_val=32",
    "data.n_test=32",
    "trainer.max_epochs=3",
    "trainer.limit_train_batches=null",
    "speed.latency_calls_b1=0",
    "speed.latency_calls_batch=0",
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("evaluate")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    result = train(compose([*RUN, f"logger.tracking_uri={uri}", f"output_dir={folder / 'outputs'}"]))
    return result, uri


def test_evaluate_reproduces_the_logged_test_bleu_exactly(trained):
    result, uri = trained
    assert result.metrics["test/bleu"] > 0
    again = evaluate(result.run_id, [], uri)
    assert again.metrics["test/bleu"] == result.metrics["test/bleu"]
    assert again.metrics["test/bleu_greedy"] == result.metrics["test/bleu_greedy"]
    client = MlflowClient(uri)
    child = client.get_run(again.child_run_id)
    assert child.data.tags[T.PARENT] == result.run_id and child.data.tags[T.EVALUATED_SPLIT] == "test"
    assert child.data.tags[T.BLEU_SIGNATURE].startswith("nrefs:1|case:mixed|eff:no|tok:13a|smooth:exp")
    logged = client.download_artifacts(result.run_id, "predictions/test.hyp.txt")
    redone = client.download_artifacts(again.child_run_id, "predictions/test.hyp.txt")
    assert Path(logged).read_text() == Path(redone).read_text()  # the same sentences, in the same order


def test_evaluate_scores_another_split_by_name_and_a_file_pair(trained, tmp_path):
    result, uri = trained
    val = evaluate(result.run_id, ["split=val", "task.beam_size=1"], uri)
    assert val.evaluated == "val" and "test/bleu_greedy" not in val.metrics  # greedy only: no second score
    # the same sentences given as files score the same
    corpus = generate_corpus(SyntheticDataConfig(**dict(compose(RUN).data)))["val"]
    (tmp_path / "val.src").write_text("\n".join(" ".join(e.source) for e in corpus) + "\n")
    (tmp_path / "val.ref").write_text("\n".join(" ".join(e.target) for e in corpus) + "\n")
    files = evaluate(
        result.run_id, [f"src={tmp_path / 'val.src'}", f"ref={tmp_path / 'val.ref'}", "task.beam_size=1"], uri
    )
    assert files.evaluated == "val.src -> val.ref" and files.metrics["test/bleu"] == val.metrics["test/bleu"]


def test_predict_writes_what_evaluate_scores_for_the_same_sentences(trained, tmp_path, capsys):
    from lightning_attn.predict import predict

    result, uri = trained
    corpus = generate_corpus(SyntheticDataConfig(**dict(compose(RUN).data)))["test"]
    sources = [" ".join(e.source) for e in corpus]
    scored = evaluate(result.run_id, [], uri)  # the run's test split: these sentences, these batches
    hypotheses = Path(MlflowClient(uri).download_artifacts(scored.child_run_id, "predictions/test.hyp.txt"))
    expected = hypotheses.read_text(encoding="utf-8").splitlines()
    assert predict(result.run_id, sources, tracking_uri=uri) == expected
    # the command: a file in, a file out, an empty line kept in its place (the other three batched together, as
    # predict() batches them: a batch's longest source bounds its decoding); greedy with --beam 1
    (tmp_path / "in.txt").write_text("\n".join([sources[0], "", *sources[1:3]]) + "\n", encoding="utf-8")
    out = tmp_path / "out.txt"
    argv = ["predict", result.run_id, "--input", str(tmp_path / "in.txt"), "--output", str(out), "--tracking-uri", uri]
    assert cli.main(argv) == 0
    alone = predict(result.run_id, [sources[0], *sources[1:3]], tracking_uri=uri)
    assert out.read_text(encoding="utf-8").splitlines() == [alone[0], "", *alone[1:]]
    greedy = predict(result.run_id, sources[:3], beam=1, tracking_uri=uri)
    assert len(greedy) == 3 and all(greedy)
    capsys.readouterr()
    assert cli.main(["predict", result.run_id, "--beam", "0", "--tracking-uri", uri]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "a beam of at least 1" in err[0]


def test_a_run_without_a_checkpoint_gets_one_line(tmp_path, capsys):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    result = train(
        compose(
            [
                *tiny(),
                "trainer.enable_checkpointing=false",
                f"logger.tracking_uri={uri}",
                "speed.latency_calls_b1=0",
                "speed.latency_calls_batch=0",
            ]
        )
    )
    with pytest.raises(EvaluateError, match="has no checkpoint"):
        evaluate(result.run_id, [], uri)
    capsys.readouterr()
    assert cli.main(["evaluate", result.run_id, "--tracking-uri", uri]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith(f"error: run {result.run_id} has no checkpoint")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["split=dev"], "the built-in corpus has no split 'dev'; choose one of: train, val, test"),
        (["attention=hard"], "attention= cannot change"),
        (["src=a.txt"], "needs both src=FILE and ref=FILE"),
        (["task.no_such_key=1"], "unknown key 'task.no_such_key'"),
    ],
)
def test_bad_arguments_are_one_line(trained, arguments, message, capsys):
    result, uri = trained
    assert cli.main(["evaluate", result.run_id, *arguments, "--tracking-uri", uri]) == cli.EXIT_BAD_INPUT
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and message in err[0]


def test_a_run_stopped_by_ctrl_c_keeps_its_best_checkpoint_and_can_be_scored(tmp_path):
    from lightning.pytorch.callbacks import Callback

    class CtrlCInEpoch2(Callback):
        def on_train_epoch_start(self, trainer, module):
            if trainer.current_epoch == 2:
                raise KeyboardInterrupt

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cfg = compose([*RUN, "trainer.max_epochs=5", f"logger.tracking_uri={uri}", f"output_dir={tmp_path / 'out'}"])
    with pytest.raises((KeyboardInterrupt, SystemExit)):
        train(cfg, callbacks=[CtrlCInEpoch2()])
    client = MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("lightning-attn").experiment_id])[0]
    assert run.info.status == "KILLED" and Path(run.data.tags[T.BEST_CHECKPOINT]).is_file()
    scored = evaluate(run.info.run_id, [], uri)
    assert scored.metrics["test/bleu"] >= 0 and scored.evaluated == "test"


def test_train_stopped_by_sigterm_exits_143_and_its_run_is_killed_with_its_checkpoint(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    cmd = [
        sys.executable,
        "-m",
        "lightning_attn",
        "train",
        *RUN,
        "trainer.max_epochs=200",
        f"logger.tracking_uri={uri}",
        f"output_dir={tmp_path / 'out'}",
    ]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 240
    while not list((tmp_path / "out").rglob("best.ckpt")) and time.monotonic() < deadline:
        time.sleep(0.5)
    os.kill(proc.pid, signal.SIGTERM)  # `kill PID`, as a scheduler does
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 128 + signal.SIGTERM, err[-2000:]
    client = MlflowClient(uri)
    run = client.search_runs([client.get_experiment_by_name("lightning-attn").experiment_id])[0]
    assert run.info.status == "KILLED" and Path(run.data.tags[T.BEST_CHECKPOINT]).is_file()
    assert run.data.tags[T.FAILURE_REASON] == "stopped by SIGTERM"


def test_predict_captions_image_files_as_evaluate_scores_them(tmp_path, capsys):
    """A captioning run trained on image files captions image files (a folder of them too): the test split's
    images get the captions evaluate wrote for them; a run on the built-in scenes says in one line it cannot."""
    from lightning_attn.predict import predict

    from .data.test_caption_table import listing
    from .data.test_karpathy import image_name

    path = listing(tmp_path / "listed", "captions.csv", splits=True)
    images = path.parent / "images"
    small = ["model.channels=[8,8,16]", "model.hidden=32", "model.embed_dim=16", "attention.hidden_dim=16"]
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = ["task=captioning", "data=caption_table", f"data.file={path}", f"data.image_root={images}", *small]
    cfg = [*run, "data.image_size=32", "trainer.max_epochs=2", "task.max_decode_len=8", f"logger.tracking_uri={uri}"]
    result = train(compose([*cfg, f"output_dir={tmp_path / 'out'}"]))
    scenes = ["data.n_train=16", "data.n_val=4", "data.n_test=4", "trainer.max_epochs=1", f"logger.tracking_uri={uri}"]
    builtin = train(compose(["task=captioning", *small, *scenes, f"output_dir={tmp_path / 'scenes'}"]))
    scored = evaluate(result.run_id, [], uri)
    expected = Path(MlflowClient(uri).download_artifacts(scored.child_run_id, "predictions/test.hyp.txt"))
    test_images = [str(images / "val2014" / image_name(i)) for i in (4, 5)]  # make_dataset's test split
    assert [Path(p).is_file() for p in test_images] == [True, True]
    assert predict(result.run_id, test_images, tracking_uri=uri) == expected.read_text(encoding="utf-8").splitlines()
    # the command: a folder of images, each caption beside its file
    capsys.readouterr()
    assert cli.main(["predict", result.run_id, "--images", str(images / "val2014"), "--tracking-uri", uri]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("\t")[0] for line in lines] == sorted(str(p) for p in (images / "val2014").iterdir())
    # a run on the built-in scenes draws its images: one line, exit 2
    capsys.readouterr()
    assert cli.main(["predict", builtin.run_id, "--images", test_images[0], "--tracking-uri", uri]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "captions the scenes it draws, not image files" in err[0]
    # as an MLflow model: base64-encoded image bytes (what an HTTP request carries) or paths, captioned as predict does
    import base64

    import mlflow.pyfunc
    import pandas as pd

    from lightning_attn.served import log_model

    served = mlflow.pyfunc.load_model(log_model(result.run_id, tracking_uri=uri))
    sent = [base64.b64encode(Path(p).read_bytes()).decode() for p in test_images]
    assert list(served.predict(pd.DataFrame({"image": sent}))) == predict(result.run_id, test_images, tracking_uri=uri)
    assert list(served.predict(pd.DataFrame({"image": test_images}), params={"beam": 1})) == predict(
        result.run_id, test_images, beam=1, tracking_uri=uri
    )
    assert cli.main(["log-model", builtin.run_id, "--tracking-uri", uri]) == 2  # the scenes: nothing to send it
    assert "is not served as an MLflow model" in capsys.readouterr().err


def test_mlflow_models_serve_answers_as_predict_translates(trained, tmp_path):
    """``mlflow models serve`` on the logged model: an HTTP request translated as ``predict`` translates."""
    import json
    import os
    import signal
    import subprocess
    import sys
    import urllib.request

    from lightning_attn.predict import predict
    from lightning_attn.served import log_model

    from .servers import answers, free_port, wait_until

    result, uri = trained
    model = log_model(result.run_id, tracking_uri=uri)
    port = free_port()
    command = [sys.executable, "-m", "mlflow", "models", "serve", "-m", model, "--env-manager", "local"]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    log = tmp_path / "serve.log"
    # the scoring server runs `uvicorn` from PATH: the environment's own, as in an activated virtual environment
    path = f"{Path(sys.executable).parent}{os.pathsep}{os.environ.get('PATH', '')}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri, "PATH": path}
    with open(log, "w") as out:
        server = subprocess.Popen(command, stdout=out, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        url = f"http://127.0.0.1:{port}"
        wait_until(lambda: answers(f"{url}/ping") or server.poll() is not None, 180, what="mlflow models serve")
        assert server.poll() is None, log.read_text()[-3000:]
        sources = ["the dog sees a cat", "some big dogs near the quick cars see some kings"]
        body = json.dumps({"dataframe_split": {"columns": ["source"], "data": [[s] for s in sources]}}).encode()
        request = urllib.request.Request(f"{url}/invocations", body, {"Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=60) as response:
            answered = json.loads(response.read())["predictions"]
        assert answered == predict(result.run_id, sources, tracking_uri=uri)
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
