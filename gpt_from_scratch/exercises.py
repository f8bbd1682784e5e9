"""Checkers for the notebooks' exercises: each looks at the learner's own answer and says one line.

Every notebook ends with exercises. Each has a "your turn" cell that runs as it stands
(a function returning ``None``, or ``answer = None``), followed by one call to a checker
here. A checker:

- compares the learner's answer with the package's reference, on random inputs and on
  the chapter's data, and names the first mistake it finds precisely (a wrong shape and
  the shape expected, the position where the future leaks into the past, ...);
- prints exactly one line, which starts with one of the three verdicts below, and
  returns ``True`` only when the answer is right;
- never raises, so "Run all" always reaches the end of the notebook, whatever the
  learner wrote.

Worked answers live in ``solutions/NN_*.ipynb``; every check there prints "correct".
"""

from __future__ import annotations

import traceback
from typing import Any, Callable

NOT_TRIED = "not tried yet"
WRONG = "not yet"
CORRECT = "correct"


def verdict(status: str, message: str) -> bool:
    """Print the one line a checker says, and return True only for a correct answer."""
    print(f"{status}: {message}")
    return status == CORRECT


def run_answer(fn: Callable, *args: Any, **kwargs: Any) -> tuple[Any, str | None]:
    """Call the learner's function; return (result, None), or (None, a one-line description of its error).

    Checkers must never raise, so an exception inside the learner's code becomes a
    message naming the exception and the learner's line where it happened.
    """
    try:
        return fn(*args, **kwargs), None
    except Exception as e:  # noqa: BLE001 - any mistake of the learner's is reported, never raised
        frames = traceback.extract_tb(e.__traceback__)
        where = f" (line {frames[-1].lineno})" if frames else ""
        return None, f"your code raised {type(e).__name__}: {e}{where}"


def guarded(check: Callable[..., bool]) -> Callable[..., bool]:
    """Wrap a checker so that a bug anywhere in it still prints one line instead of raising."""

    def wrapper(*args: Any, **kwargs: Any) -> bool:
        try:
            return bool(check(*args, **kwargs))
        except Exception as e:  # noqa: BLE001
            return verdict(WRONG, f"the check could not run on your answer ({type(e).__name__}: {e})")

    wrapper.__name__, wrapper.__doc__ = check.__name__, check.__doc__
    wrapper.__wrapped__ = check
    return wrapper


# --- chapter checkers below, one section per chapter, in course order -------------------
