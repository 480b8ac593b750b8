"""The interleaved timer's order (no timing is asserted: the sessions are stand-ins)."""

from __future__ import annotations

from edgefit.calibrate import _measure


class _Session:
    def __init__(self, name: str, log: list[str]) -> None:
        self.name, self.log = name, log

    def run(self, _outputs, _feeds) -> None:
        pass


def test_rounds_rotate_so_every_model_takes_every_position(monkeypatch):
    """A B C, B C A, C A B …: a serpentine A B C C B A ran the middle model twice in a row (the
    second time warm) every other round, which biased it."""
    log: list[str] = []
    monkeypatch.setattr(_measure, "session", lambda m, threads: _Session(m, log))
    monkeypatch.setattr(_measure, "feeds_for", lambda s: {})

    def timed(sess, feeds, min_runs, budget_s, collect=True):
        log.append(sess.name)
        return [1.0] * min_runs, None

    monkeypatch.setattr(_measure, "_timed", timed)
    out = _measure.interleaved(["a", "b", "c"], 1, rounds=6)
    rounds = [log[i : i + 3] for i in range(0, 18, 3)]
    assert rounds[:3] == [["a", "b", "c"], ["b", "c", "a"], ["c", "a", "b"]]
    assert all(sorted(r) == ["a", "b", "c"] for r in rounds)
    assert not any(log[i] == log[i + 1] for i in range(len(log) - 1))
    for model in "abc":  # each model first, second and last equally often
        assert sorted(r.index(model) for r in rounds) == [0, 0, 1, 1, 2, 2]
    assert [len(t.round_medians_s) for t in out] == [6, 6, 6]


def test_a_round_another_process_disturbed_is_timed_again(monkeypatch):
    """A round whose threads waited for a CPU held by another process (schedstat) is redone, and
    the timing keeps the quiet round: a busy neighbour on a 2-core machine made 2-thread timings up
    to 2x slow, and the fitted profile kept them."""
    monkeypatch.setattr(_measure, "session", lambda m, threads: _Session(m, []))
    monkeypatch.setattr(_measure, "feeds_for", lambda s: {})
    # model "a": its second round is disturbed twice (slow, 40% of the time waiting), then quiet
    script = {"a": [(1.0, 0.0), (3.0, 0.4), (3.0, 0.4), (1.1, 0.01), (1.0, 0.0)], "b": [(2.0, 0.0)] * 3}
    calls = {"a": 0, "b": 0}

    def timed(sess, feeds, min_runs, budget_s, collect=True):
        value, wait = script[sess.name][calls[sess.name]]
        calls[sess.name] += 1
        return [value] * min_runs, wait

    monkeypatch.setattr(_measure, "_timed", timed)
    a, b = _measure.interleaved(["a", "b"], 2, rounds=3, max_spread=1.0)
    assert calls == {"a": 5, "b": 3}
    assert a.round_medians_s == (1.0, 1.1, 1.0) and a.cpu_wait == 0.01
    assert b.cpu_wait == 0.0


def test_a_machine_busy_through_every_retry_is_on_the_record(monkeypatch):
    monkeypatch.setattr(_measure, "session", lambda m, threads: _Session(m, []))
    monkeypatch.setattr(_measure, "feeds_for", lambda s: {})
    waits = iter([0.5, 0.3, 0.6, 0.4] + [0.0] * 10)
    monkeypatch.setattr(
        _measure, "_timed", lambda sess, feeds, n, b, collect=True: ([1.0] * n, next(waits))
    )
    (a,) = _measure.interleaved(["a"], 2, rounds=2, max_spread=1.0)
    assert a.cpu_wait == 0.3  # the least disturbed of the first round's four tries


def test_quiet_only_leaves_the_slow_mode_out_and_takes_rounds_until_three_are_quiet(monkeypatch):
    """Rounds in two modes (the slow one ~2x, at times most of a model's rounds): the timing is the
    median of the rounds within 20% of the fastest, with rounds added until three are."""
    monkeypatch.setattr(_measure, "session", lambda m, threads: _Session(m, []))
    monkeypatch.setattr(_measure, "feeds_for", lambda s: {})
    values = iter([2.1, 1.0, 2.2, 2.0, 1.1, 1.05])
    monkeypatch.setattr(
        _measure, "_timed", lambda sess, feeds, n, b, collect=True: ([next(values)] * n, 0.0)
    )
    (a,) = _measure.interleaved(["a"], 2, rounds=3, max_rounds=9, quiet_only=True)
    assert a.round_medians_s == (1.0, 1.1, 1.05) and a.left_out == 3
    assert a.median_s == 1.05 and next(values, None) is None
    # without quiet_only, the same rounds' median is the slow mode's
    values = iter([2.1, 1.0, 2.2, 2.0, 1.1])
    (b,) = _measure.interleaved(["a"], 2, rounds=5, max_rounds=5)
    assert b.median_s == 2.0 and b.left_out == 0


def test_the_optimizers_final_pick_asks_for_as_many_quiet_rounds_as_its_protocol_has(monkeypatch):
    """``min_quiet``: the final pick's ≥ 5 rounds are 5 quiet ones, up to its round cap."""
    monkeypatch.setattr(_measure, "session", lambda m, threads: _Session(m, []))
    monkeypatch.setattr(_measure, "feeds_for", lambda s: {})
    values = iter([1.0, 2.0, 1.05, 1.1, 2.1, 1.0, 1.02, 2.0, 2.0])
    monkeypatch.setattr(
        _measure, "_timed", lambda sess, feeds, n, b, collect=True: ([next(values)] * n, 0.0)
    )
    (a,) = _measure.interleaved(["a"], 2, rounds=5, max_rounds=11, quiet_only=True, min_quiet=5)
    assert a.round_medians_s == (1.0, 1.05, 1.1, 1.0, 1.02) and a.left_out == 2
    assert next(values) == 2.0  # it stopped at the fifth quiet round
