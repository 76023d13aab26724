"""Side-by-side timing: the same work under two names is the same speed; twice the work is slower, with an
interval that says so; a ratio is a difference only beyond the interval and the minimum. The timings count the
test thread's CPU time (``clock=time.thread_time``), so that they hold on a machine other work shares."""

from __future__ import annotations

import time

import pytest
import torch

from lightning_attn.speedpass import timing


def _matmuls(times: int):
    a = torch.randn(96, 96)

    def call() -> None:
        for _ in range(times):
            a @ a

    return call


def test_the_same_work_under_two_names_is_the_same_speed():
    once = _matmuls(20)
    rounds = timing.interleaved({"a": once, "b": once}, rounds=12, block_s=0.01, threads=1, clock=time.thread_time)
    assert rounds.names == ["a", "b"] and all(len(rounds.seconds[n]) == 12 for n in rounds.names)
    (ratio,) = timing.compare(rounds, "a", family=20)  # as in a pass of 20 ratios: every round must agree
    assert ratio.verdict == "same", ratio
    assert ratio.words().startswith(("b not shown different from a (time ratio", "b within 5% of a's speed"))


def test_a_ratio_reads_as_what_its_interval_shows():
    def words(ratio, low, high):
        return timing.Ratio("hard", "soft", ratio, low, high, level=0.99, noisy=False).words()

    assert words(1.32, 1.25, 1.40) == "hard 1.32× slower than soft (time ratio 1.25×–1.40×)"
    assert words(0.5, 0.45, 0.55) == "hard 2.00× faster than soft (time ratio 0.45×–0.55×)"
    assert words(0.96, 0.95, 0.97) == "hard within 5% of soft's speed (time ratio 0.95×–0.97×)"  # shown, too small
    assert words(1.02, 0.90, 1.15) == "hard not shown different from soft (time ratio 0.90×–1.15×)"


def test_twice_the_work_is_slower_and_its_interval_excludes_one():
    seen = []
    rounds = timing.interleaved(
        {"once": _matmuls(20), "twice": _matmuls(40)},
        rounds=12,
        block_s=0.01,
        threads=1,
        progress=lambda done, total: seen.append((done, total)),
        clock=time.thread_time,  # this thread's work only: the test holds on a machine other work shares
    )
    assert seen[-1] == (12, 12)
    (ratio,) = timing.compare(rounds, "once")
    assert ratio.verdict == "slower" and 1 < ratio.low <= ratio.ratio <= ratio.high, ratio
    assert ratio.words().startswith("twice") and "slower than once" in ratio.words()


def test_a_ratio_is_a_difference_only_beyond_its_interval_and_the_minimum():
    def ratio(value, low, high):
        return timing.Ratio("x", "ref", value, low, high, 0.95, False)

    assert ratio(0.5, 0.4, 0.6).verdict == "faster"
    assert ratio(0.5, 0.4, 1.1).verdict == "same"  # the interval reaches 1
    assert ratio(0.97, 0.96, 0.98).verdict == "same"  # significant, but within 5 % of 1
    assert ratio(1.3, 1.1, 1.5).verdict == "slower"


def test_intervals_widen_with_the_family_they_hold_for():
    rounds = timing.Rounds(["r", "x"], {"r": [1.0] * 15, "x": [1.1 + 0.01 * i for i in range(15)]})
    (alone,) = timing.compare(rounds, "r")
    (in_family,) = timing.compare(rounds, "r", family=20)
    assert in_family.level == pytest.approx(1 - 0.05 / 20) and alone.level == pytest.approx(0.95)
    assert alone.ratio == pytest.approx(1.17) and (alone.low, alone.high) == pytest.approx((1.13, 1.21))
    assert (in_family.low, in_family.high) == pytest.approx((1.11, 1.23))  # wider: it holds with 19 others


def test_one_disturbed_round_cannot_make_a_difference():
    # ten rounds alike, and two in which other work took the core while b ran: the median does not move, and the
    # interval is the sign test's, not one that assumes normal noise
    a = [1.0] * 12
    b = [1.0 + 0.001 * (i % 3 - 1) for i in range(10)] + [3.0, 3.2]
    (ratio,) = timing.compare(timing.Rounds(["a", "b"], {"a": a, "b": b}), "a", family=6)
    assert ratio.verdict == "same" and ratio.ratio == pytest.approx(1.0, abs=0.002)


def test_timing_needs_work_and_rounds():
    with pytest.raises(ValueError, match="two rounds"):
        timing.interleaved({"a": lambda: None}, rounds=1)


def test_the_median_interval_is_the_order_statistics_that_cover_it_95_percent():
    def interval(n):
        return timing.Rounds(["a"], {"a": [float(v) for v in range(1, n + 1)]}).median_interval("a")

    assert interval(15) == (4.0, 12.0)  # 1 - 2 P(B(15, 1/2) <= 3) = 0.965; the next pair in would cover 0.88
    assert interval(30) == (10.0, 21.0)
    assert interval(5) == (1.0, 5.0)  # too few rounds for anything narrower than the range


def test_a_ratio_read_back_from_its_dict_and_turned_around():
    ratio = timing.Ratio("x", "ref", 0.5, 0.4, 0.6, 0.99, False)
    data = ratio.as_dict()
    assert data["verdict"] == "faster" and data["words"].startswith("x 2.00× faster than ref")
    assert timing.Ratio.from_dict(data) == ratio
    back = ratio.inverse()
    assert (back.name, back.reference, back.verdict) == ("ref", "x", "slower") and back.low == pytest.approx(1 / 0.6)


def test_too_few_rounds_for_the_level_claim_nothing():
    # four rounds all agreeing: their range covers the median 1 - 2 / 16 = 87.5 % of the time, short of 95 %
    rounds = timing.Rounds(["a", "b"], {"a": [1.0] * 4, "b": [2.0, 2.1, 1.9, 2.05]})
    (ratio,) = timing.compare(rounds, "a")
    assert not ratio.enough and ratio.verdict == "same" and "too few rounds" in ratio.words()
    assert timing.covers(6, 0.95) and not timing.covers(5, 0.95)


def test_some_pieces_compared_alone_keep_the_times_they_had_in_the_shared_rounds():
    seconds = {"a/decode": [1.0, 1.1, 1.2], "b/decode": [2.0, 2.2, 2.4], "a/train": [9.0, 9.0, 9.0]}
    rounds = timing.Rounds(list(seconds), seconds, {"a/decode": 5, "b/decode": 5}, threads=2)
    decode = rounds.only(["a/decode", "b/decode"], renamed=["a", "b"])
    assert decode.names == ["a", "b"] and decode.seconds == {"a": [1.0, 1.1, 1.2], "b": [2.0, 2.2, 2.4]}
    assert decode.calls == {"a": 5, "b": 5} and decode.threads == 2
    (ratio,) = timing.compare(decode, "a", family=1)
    assert (ratio.name, ratio.reference, ratio.ratio) == ("b", "a", pytest.approx(2.0))
    with pytest.raises(ValueError):
        rounds.only(["a/decode"], renamed=["a", "b"])
