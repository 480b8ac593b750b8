"""How long a recipe search may go on: a time cap that stops it trying new recipes while leaving
room for its interleaved final.

A capped search walks its stages as usual and, before each one (and before each node of the
per-node sensitivity), asks whether the time spent so far plus what its final will take still fits
under the cap; once it does not, every later stage is skipped (the clock only moves on) and the
search goes straight to its final among what it tried: fp32, onnxruntime's defaults and the best
recipes timed so far. The final's time is not known before it runs; it is estimated from the
slowest seconds per model and round of the timings so far (one timing is the first stage's, which
always runs). The first stage and the final always run, so a cap too small for them overruns:
:data:`MIN_CAP_S` is the least cap a caller should start a search with.
"""

from __future__ import annotations

import math
import time

from edgefit.errors import EdgefitError

# The least cap worth starting a search with. Its first stage (fp32, this CPU's recipe and
# onnxruntime's defaults built, scored and timed in 3 interleaved rounds) and its final (those
# three in 5 rounds) alone took 1.0-3.9 s on the bench's four digits tasks on this project's
# shared 2-core machine (a whole search: 6-27 s); under this cap there is no time to search more.
MIN_CAP_S = 5.0
# The final's estimate is a guess from earlier timings (an item whose rounds spread gets more of
# them, and a session's first runs are slower): the reserve is this much larger than the guess.
FINAL_MARGIN = 1.5


def _now() -> float:
    """The search's clock (a test replaces it with a scripted one)."""
    return time.perf_counter()


class SearchCap:
    """The clock of one search, its cap (None: no cap) and the stages the cap left out.

    >>> cap = SearchCap(None)
    >>> cap.stop("types", items=6, rounds=5), cap.capped
    (False, False)
    """

    def __init__(self, cap_s: float | None) -> None:
        if cap_s is not None and (
            isinstance(cap_s, bool) or not isinstance(cap_s, int | float) or not cap_s > 0
        ):
            raise EdgefitError(
                f"time_cap_s={cap_s!r} is not allowed",
                where="search_recipe(time_cap_s=...)",
                fix="pass a positive number of seconds, or None for no cap",
            )
        self.cap_s = None if cap_s is None or math.isinf(cap_s) else float(cap_s)
        self.start = _now()
        self.round_s = 0.0  # the slowest seconds per model and round timed so far
        self.skipped: list[str] = []

    def elapsed(self) -> float:
        return _now() - self.start

    def timed(self, seconds: float, items: int, rounds: int) -> None:
        """A timing of ``items`` models in ``rounds`` rounds took ``seconds``."""
        if items > 0 and rounds > 0:
            self.round_s = max(self.round_s, seconds / (items * rounds))

    def reserve(self, items: int, rounds: int) -> float:
        """What timing ``items`` models in ``rounds`` rounds is expected to take, with margin."""
        return items * rounds * self.round_s * FINAL_MARGIN

    def stop(self, stage: str, *, items: int, rounds: int) -> bool:
        """True when ``stage`` must be skipped: the time so far plus a timing of ``items``
        models in ``rounds`` rounds (the final, for a stage that tries new recipes) would pass
        the cap. A skipped stage is recorded once."""
        if self.cap_s is None:
            return False
        if self.elapsed() + self.reserve(items, rounds) < self.cap_s:
            return False
        if stage not in self.skipped:
            self.skipped.append(stage)
        return True

    @property
    def capped(self) -> bool:
        """Whether the cap cut the search short (a stage or a re-timing skipped)."""
        return bool(self.skipped)
