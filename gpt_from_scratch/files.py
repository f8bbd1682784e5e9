"""Writing a file atomically: a reader sees the old file or the new one, never half of one.

Checkpoints, the downloaded text, tokenizer files and the training log are all
written through `atomic_write`: the bytes go to a temporary file in the same
folder, are flushed to disk (fsync), and only then renamed over the target
(os.replace is atomic on one filesystem). A crash or Ctrl-C in the middle
leaves the old file as it was and no temporary file behind.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path
from typing import IO, Iterator


@contextlib.contextmanager
def atomic_write(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None) -> Iterator[IO]:
    """`with atomic_write(path) as f:` writes `path` whole when the block ends, or not at all if it raises.

    mode is "wb" (binary) or "w" (text, with `encoding`, utf-8 by default). The
    folder is created if needed.
    """
    if mode not in ("wb", "w"):
        raise ValueError(f"atomic_write writes with mode 'wb' or 'w', got {mode!r}")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        text = {"encoding": encoding or "utf-8", "newline": ""} if mode == "w" else {}
        with os.fdopen(fd, mode, **text) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise
    _fsync_folder(path.parent)


def _fsync_folder(folder: Path) -> None:
    """Make the rename itself durable; best effort (folders cannot be opened on Windows)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
