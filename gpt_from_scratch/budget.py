"""Training within a time budget: `train --max-minutes M`.

A learner with "20 minutes on Colab" does not know how many steps fit in 20
minutes, and an equal-time comparison of two recipes cannot fix the steps
either. `TimeBudget` counts the seconds spent in training steps only (the loop
times each step; evaluation and checkpoints fall outside), and estimates the
total steps the budget holds from the recent steps' speed. The learning-rate
schedule decays over that estimate, so it ends at min_lr when the time is up;
if the machine gets faster or slower, the estimate follows.
"""

from __future__ import annotations

import math
import time
from collections import deque
from typing import Callable


class TimeBudget:
    """Seconds of training allowed, seconds spent, and how many steps that makes in all.

    `clock` is any function returning seconds; the tests give it a fake one.
    """

    def __init__(self, minutes: float | None, clock: Callable[[], float] = time.perf_counter, spent: float = 0.0,
                 window: int = 20):
        self.seconds = math.inf if minutes is None else 60.0 * minutes  # None: no limit, only the counting
        self.clock = clock
        self.spent = spent  # training seconds so far (a resumed run starts with its old total)
        self.recent = deque(maxlen=window)  # the last steps' durations: the speed estimate follows changes

    def time_step(self, step: Callable[[], object]) -> object:
        """Run one training step and count its time."""
        t0 = self.clock()
        out = step()
        dt = self.clock() - t0
        self.spent += dt
        self.recent.append(dt)
        return out

    @property
    def expired(self) -> bool:
        return self.spent >= self.seconds

    def total_steps(self, iter_num: int) -> int | None:
        """Estimated steps in the whole budget: those done plus those the time left holds. None before any step."""
        if not self.recent or math.isinf(self.seconds):
            return None
        per_step = max(sum(self.recent) / len(self.recent), 1e-9)
        left = max(self.seconds - self.spent, 0.0)
        return iter_num + math.ceil(left / per_step)
