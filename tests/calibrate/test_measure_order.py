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
