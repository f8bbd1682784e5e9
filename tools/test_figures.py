"""tools/figures.py draws every figure of notes/ without the network or training."""

from __future__ import annotations

import figures


def test_every_figure_is_drawn(tmp_path):
    written = figures.make_figures(tmp_path)
    names = {p.name for p in written}
    assert names == {f"{name}.png" for name in figures.FIGURES}
    for p in written:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5_000


def test_only_and_list(tmp_path, capsys):
    assert figures.main(["--only", "lr_schedule", "--out", str(tmp_path)]) == 0
    assert [p.name for p in tmp_path.iterdir()] == ["lr_schedule.png"]
    assert figures.main(["--list"]) == 0
    assert "sampling.png" in capsys.readouterr().out
