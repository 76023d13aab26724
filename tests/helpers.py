"""Shared settings for tests: tiny models and data that train in seconds."""

TINY = [
    "data.n_train=96",
    "data.n_val=16",
    "data.n_test=16",
    "data.batch_size=16",
    "model.embed_dim=16",
    "model.encoder_hidden=16",
    "model.decoder_hidden=32",
    "attention.hidden_dim=16",
    "trainer.max_epochs=1",
    "trainer.limit_train_batches=3",
    "trainer.enable_progress_bar=false",
    "task.beam_size=2",
    "task.attention_pictures_every=0",  # the pictures tests turn them on
]


def tiny(*overrides: str, mechanism: str = "soft") -> list[str]:
    extra = [o for o in TINY if not (mechanism == "uniform" and o.startswith("attention."))]
    return [f"attention={mechanism}", *extra, *overrides]
