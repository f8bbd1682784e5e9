"""The shipped checkpoints are the files the model card describes."""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

import pytest
import torch

import gpt_from_scratch as gfs
from gpt_from_scratch.checkpoint import FORMAT, shipped_checkpoint_path

CKPT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
CARD = (CKPT_DIR / "README.md").read_text(encoding="utf-8")


def card_value(pattern: str) -> str:
    m = re.search(pattern, CARD)
    assert m, f"checkpoints/README.md has no line matching {pattern!r}"
    return m.group(1)


SHIPPED = sorted(p.name for p in CKPT_DIR.glob("*.pt"))


def test_there_is_a_shipped_checkpoint_and_it_is_the_default():
    assert SHIPPED, "no checkpoint in checkpoints/"
    assert shipped_checkpoint_path().parent.resolve() == CKPT_DIR.resolve()


@pytest.mark.parametrize("name", SHIPPED)
def test_sha256_matches_the_card(name):
    want = card_value(rf"sha256 of `{re.escape(name)}`: `([0-9a-f]{{64}})`")
    assert hashlib.sha256((CKPT_DIR / name).read_bytes()).hexdigest() == want


@pytest.mark.parametrize("name", SHIPPED)
def test_plain_data_only(name):
    ckpt = torch.load(CKPT_DIR / name, map_location="cpu", weights_only=True)
    assert ckpt["format"] == FORMAT
    assert "optimizer" not in ckpt, "shipped checkpoints hold weights only"


@pytest.mark.parametrize("name", SHIPPED)
def test_val_loss_on_a_fixed_slice_matches_the_card(name, text):
    want = float(card_value(rf"val loss of `{re.escape(name)}` on the first 20,000 characters of the val split: `([0-9.]+)`"))
    model, tokenizer = gfs.load_checkpoint(CKPT_DIR / name)
    assert not model.training
    assert tokenizer.vocab_size == 65
    _, _, val = gfs.prepare_data(text, tokenizer=tokenizer)
    assert abs(gfs.evaluate_split(model, val[:20_000]) - want) < 1e-3
