"""One source of truth: what the notebooks build by hand must stay equal to the package.

Notebooks 01-03 type out the bigram model, the attention head, multi-head attention, the
feed-forward layer and the block by hand, then import the package's versions from then on;
notebook 04 types out the GPT, the weight copy into the fused block and the training recipe
(learning-rate schedule, optimizer groups, evaluation, the loop itself).
This test keeps the two copies from drifting apart, without running a kernel:

1. it reads each notebook with nbformat and pulls the top-level ``class`` and ``def``
   statements (and the ``import``s of torch and gpt_from_scratch they rely on) out of its
   code cells with ``ast``; cells that do not parse as Python (IPython magics) are skipped;
2. it executes them in a fresh namespace that holds torch, nn, F, math and gfs;
3. for every class or function whose name also exists in the package, it builds both under
   the same ``torch.manual_seed`` with the same small arguments (nothing is copied across:
   the same seed must give the same init) and asserts the same state_dict keys, shapes and
   values, and the same outputs on the same random input. Where the same seed cannot give the
   same thing, the check compares behaviour instead: HandGPT's weights are copied into a
   ``gfs.GPT`` (bias, ReLU, untied) and the logits compared; the hand-written training loop
   and ``gfs.train`` train copies of one model on the same data and must give the same losses
   and weights; get_lr, configure_optimizer and estimate_loss must return what train.py's do.

It also asserts that each notebook still defines what it is expected to (EXPECTED), and that
no notebook defines a package name without a check here. Adding a notebook: add it to
EXPECTED, and add a check below for any new package name it defines.
"""

from __future__ import annotations

import ast
import copy
import functools
import importlib
import inspect
import math
from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

import gpt_from_scratch as gfs
from gpt_from_scratch import bigram, data, teaching, weights

engine = importlib.import_module("gpt_from_scratch.train")  # the module (gfs.train is its train function)

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"

# What each notebook must define by hand.
EXPECTED: dict[str, list[str]] = {
    "01_bigram.ipynb": ["init_weights", "get_batch", "BigramLanguageModel"],
    "02_single_head_attention.ipynb": ["causal_mask", "Head", "SingleHeadLanguageModel"],
    "03_multi_head_attention.ipynb": [
        "Head",
        "MultiHeadAttention",
        "batched_multi_head_attention",
        "sdpa_multi_head_attention",
        "FeedForward",
        "Block",
    ],
    "04_gpt.ipynb": [
        "HandGPT",
        "copy_block_weights",
        "get_lr",
        "configure_optimizer",
        "estimate_loss",
        "train_by_hand",
    ],
    "05_generation.ipynb": ["hand_cached_step"],
}

# Where the package's teaching objects live: a notebook name that matches one of these
# classes or functions must have a check below.
PACKAGE_MODULES = (gfs, teaching, bigram, data, weights, engine)

# Hand-built names whose package counterpart has another name.
ALIASES = {"SingleHeadLanguageModel": "AttentionLanguageModel", "HandGPT": "GPT", "train_by_hand": "train",
           "hand_cached_step": "GPT"}  # GPT.forward_cached

VOCAB, N_EMBD, N_HEAD, BLOCK = 11, 12, 3, 6


def package_names() -> set[str]:
    names = set()
    for module in PACKAGE_MODULES:
        for name, obj in vars(module).items():
            if not name.startswith("_") and (inspect.isclass(obj) or inspect.isfunction(obj)):
                if getattr(obj, "__module__", "").startswith("gpt_from_scratch"):
                    names.add(name)
    return names


# --------------------------------------------------------------------------- #
# Reading the notebooks
# --------------------------------------------------------------------------- #
def _wanted(node: ast.stmt) -> bool:
    if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
        return True
    if isinstance(node, ast.Import):
        return all(a.name.split(".")[0] in ("torch", "math", "gpt_from_scratch") for a in node.names)
    if isinstance(node, ast.ImportFrom):
        return (node.module or "").split(".")[0] in ("torch", "gpt_from_scratch")
    return False


@functools.lru_cache(maxsize=None)
def notebook_namespace(notebook: str) -> tuple[dict, tuple[str, ...]]:
    """Execute a notebook's top-level definitions; return (namespace, names defined)."""
    path = NOTEBOOKS / notebook
    assert path.is_file(), f"{path} is missing"
    nb = nbformat.read(path, as_version=4)
    nodes: list[ast.stmt] = []
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        try:
            tree = ast.parse(cell.source)
        except SyntaxError:  # IPython magics such as !pip or %cd (the setup cell)
            continue
        nodes += [n for n in tree.body if _wanted(n)]
    names = tuple(n.name for n in nodes if isinstance(n, (ast.ClassDef, ast.FunctionDef)))
    ns = {"torch": torch, "nn": nn, "F": F, "math": math, "gfs": gfs, "__name__": f"notebook_{path.stem}"}
    module = ast.Module(body=nodes, type_ignores=[])
    exec(compile(module, str(path), "exec"), ns)  # definitions only: nothing runs
    return ns, names


def hand_built(notebook: str, name: str):
    ns, names = notebook_namespace(notebook)
    assert name in names, f"{notebook} no longer defines {name}"
    return ns[name]


# --------------------------------------------------------------------------- #
# Comparisons
# --------------------------------------------------------------------------- #
def assert_same_state(ours: nn.Module, theirs: nn.Module, what: str) -> None:
    sd_ours, sd_theirs = ours.state_dict(), theirs.state_dict()
    assert list(sd_ours) == list(sd_theirs), f"{what}: different state_dict keys"
    for k in sd_ours:
        assert sd_ours[k].shape == sd_theirs[k].shape, f"{what}: {k} has shape {tuple(sd_ours[k].shape)}, package {tuple(sd_theirs[k].shape)}"
        assert sd_ours[k].dtype == sd_theirs[k].dtype, f"{what}: {k} has dtype {sd_ours[k].dtype}"
        assert torch.equal(sd_ours[k], sd_theirs[k]), f"{what}: {k} differs under the same seed (init changed?)"


def assert_same_output(a, b, what: str) -> None:
    if isinstance(a, (tuple, list)):
        assert isinstance(b, (tuple, list)) and len(a) == len(b), f"{what}: different outputs"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same_output(x, y, f"{what}[{i}]")
        return
    if a is None or b is None:
        assert a is None and b is None, f"{what}: one output is None"
        return
    assert a.shape == b.shape, f"{what}: shape {tuple(a.shape)} vs package {tuple(b.shape)}"
    assert a.dtype == b.dtype, f"{what}: dtype {a.dtype} vs package {b.dtype}"
    assert torch.allclose(a, b, rtol=1e-5, atol=1e-6), f"{what}: outputs differ (max {float((a - b).abs().max()):.3g})"


def float_input(seed: int = 0) -> tuple:
    return (torch.randn(2, BLOCK, N_EMBD, generator=torch.Generator().manual_seed(seed)),)


def token_input(seed: int = 0) -> tuple:
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(VOCAB, (2, BLOCK), generator=g)
    return idx, torch.randint(VOCAB, (2, BLOCK), generator=g)


# name -> (args, kwargs, package factory taking the same kwargs, input maker, has dropout)
MODULE_CHECKS = {
    "BigramLanguageModel": ((VOCAB,), lambda **kw: gfs.BigramLanguageModel(VOCAB, **kw), token_input, False),
    "Head": ((N_EMBD, 4), lambda **kw: gfs.Head(N_EMBD, 4, **kw), float_input, True),
    "MultiHeadAttention": ((N_EMBD, N_HEAD), lambda **kw: gfs.MultiHeadAttention(N_EMBD, N_HEAD, **kw), float_input, True),
    "FeedForward": ((N_EMBD,), lambda **kw: gfs.FeedForward(N_EMBD, **kw), float_input, True),
    "Block": ((N_EMBD, N_HEAD), lambda **kw: gfs.Block(N_EMBD, N_HEAD, **kw), float_input, True),
    "SingleHeadLanguageModel": (
        (VOCAB, BLOCK, N_EMBD),
        lambda **kw: gfs.AttentionLanguageModel(VOCAB, block_size=BLOCK, n_embd=N_EMBD, stage="single_head", **kw),
        token_input,
        False,
    ),
}


def check_module(cls, name: str) -> None:
    args, package_factory, make_input, has_dropout = MODULE_CHECKS[name]
    settings = [{}] + ([{"dropout": 0.25}] if has_dropout else [])
    for kwargs in settings:
        for seed in (0, 1337):
            torch.manual_seed(seed)
            ours = cls(*args, **kwargs)
            torch.manual_seed(seed)
            theirs = package_factory(**kwargs)
            what = f"{name}{args} {kwargs or ''} seed {seed}"
            assert_same_state(ours, theirs, what)
            inputs = make_input(seed)
            ours.eval(), theirs.eval()
            with torch.no_grad():
                assert_same_output(ours(*inputs), theirs(*inputs), f"{what} eval")
            if kwargs.get("dropout"):
                # in training mode dropout must sit in the same places: same seed, same masks
                ours.train(), theirs.train()
                with torch.no_grad():
                    torch.manual_seed(seed + 1)
                    out_ours = ours(*inputs)
                    torch.manual_seed(seed + 1)
                    out_theirs = theirs(*inputs)
                assert_same_output(out_ours, out_theirs, f"{what} train")


def check_init_weights(fn, name: str) -> None:
    def build():
        return nn.Sequential(nn.Embedding(7, 5), nn.Linear(5, 4), nn.LayerNorm(4), nn.Linear(4, 3, bias=False))

    for seed in (0, 1337):
        torch.manual_seed(seed)
        ours = build()
        ours.apply(fn)
        torch.manual_seed(seed)
        theirs = build()
        theirs.apply(weights.init_weights)
        assert_same_state(ours, theirs, f"{name} seed {seed}")


def check_get_batch(fn, name: str) -> None:
    tokens = torch.randint(VOCAB, (500,), generator=torch.Generator().manual_seed(0))
    for batch_size, block_size in ((4, 8), (3, 1), (1, 20)):
        for seed in (0, 1337):
            ours = fn(tokens, batch_size, block_size, generator=torch.Generator().manual_seed(seed))
            theirs = data.get_batch(tokens, batch_size, block_size, generator=torch.Generator().manual_seed(seed))
            what = f"{name}(batch {batch_size}, block {block_size}, seed {seed})"
            assert_same_output(tuple(ours), tuple(theirs), what)
            assert torch.equal(ours[0], theirs[0]) and torch.equal(ours[1], theirs[1]), what


def check_causal_mask(fn, name: str) -> None:
    for T in (1, 2, 5, 9):
        ours, theirs = fn(T), teaching.causal_mask(T)
        assert ours.dtype == theirs.dtype and torch.equal(ours, theirs), f"{name}({T})"
        assert torch.equal(fn(T, "cpu"), theirs), f"{name}({T}, 'cpu')"


def check_mha_function(fn, name: str) -> None:
    package_fn = getattr(teaching, name)
    for seed in (0, 1337):
        torch.manual_seed(seed)
        mha = gfs.MultiHeadAttention(N_EMBD, N_HEAD).eval()
        (x,) = float_input(seed)
        with torch.no_grad():
            ours, theirs, loop = fn(mha, x), package_fn(mha, x), mha(x)
        assert_same_output(ours, theirs, f"{name} seed {seed}")
        assert_same_output(ours, loop, f"{name} vs the loop over heads, seed {seed}")


def small_gpt_config(**changes) -> gfs.GPTConfig:
    base = dict(vocab_size=VOCAB, block_size=BLOCK, n_layer=2, n_head=N_HEAD, n_embd=N_EMBD, dropout=0.0)
    return gfs.GPTConfig(**{**base, **changes})


def check_copy_block_weights(fn, name: str) -> None:
    cfg = small_gpt_config(n_layer=1, bias=True, activation="relu")
    for seed in (0, 1337):
        torch.manual_seed(seed)
        block = gfs.Block(N_EMBD, N_HEAD).eval()
        with torch.no_grad():
            for p in block.parameters():
                p.normal_(0.0, 0.1)  # every weight and bias distinct: a swapped or skipped copy shows
        ours, theirs = gfs.GPT(cfg).transformer.h[0].eval(), gfs.GPT(cfg).transformer.h[0].eval()
        fn(block, ours)
        gfs.copy_block_weights(block, theirs)
        assert_same_state(ours, theirs, f"{name} seed {seed}")
        (x,) = float_input(seed)
        with torch.no_grad():
            assert_same_output(ours(x), block(x), f"{name} seed {seed}: the fused block vs gfs.Block")


def check_hand_gpt(cls, name: str) -> None:
    """HandGPT has gfs.GPT(bias=True, activation="relu", tie_weights=False)'s parameters (no qkv bias): same logits."""
    cfg = small_gpt_config(bias=True, activation="relu", tie_weights=False)
    for seed in (0, 1337):
        torch.manual_seed(seed)
        ours, gpt = cls(VOCAB, BLOCK, N_EMBD, N_HEAD, cfg.n_layer).eval(), gfs.GPT(cfg).eval()
        qkv_bias = cfg.n_layer * 3 * N_EMBD  # c_attn's bias: the teaching heads have none (it is copied as 0)
        assert sum(p.numel() for p in ours.parameters()) + qkv_bias == gpt.num_params(), f"{name}: parameter count"
        tf = gpt.transformer
        with torch.no_grad():
            for p in ours.parameters():
                p.normal_(0.0, 0.1)
            tf.wte.weight.copy_(ours.token_embedding_table.weight)
            tf.wpe.weight.copy_(ours.position_embedding_table.weight)
            for block, gpt_block in zip(ours.blocks, tf.h, strict=True):
                gfs.copy_block_weights(block, gpt_block)
            tf.ln_f.load_state_dict(ours.ln_f.state_dict())
            gpt.lm_head.weight.copy_(ours.lm_head.weight)
            inputs = token_input(seed)
            assert_same_output(ours(*inputs), gpt(*inputs), f"{name} seed {seed}: logits and loss vs gfs.GPT")


def check_get_lr(fn, name: str) -> None:
    configs = [
        engine.PRESETS["cpu-tiny"],
        engine.PRESETS["shakespeare-char"],
        gfs.TrainConfig(max_iters=50, warmup_iters=0),
        gfs.TrainConfig(max_iters=80, warmup_iters=10, lr_decay_iters=40),  # decays before the end
        gfs.TrainConfig(decay_lr=False, max_iters=10),
    ]
    for cfg in configs:
        for it in range(cfg.max_iters + 20):
            ours, theirs = fn(it, cfg), engine.get_lr(it, cfg)
            assert math.isclose(ours, theirs, rel_tol=1e-12), f"{name}({it}): {ours} vs train.get_lr {theirs}"


def check_configure_optimizer(fn, name: str) -> None:
    torch.manual_seed(0)
    model = gfs.GPT(small_gpt_config(bias=True))
    model.transformer.wpe.weight.requires_grad_(False)  # a frozen tensor stays out of both
    for cfg in (gfs.TrainConfig(), gfs.TrainConfig(weight_decay=0.0, learning_rate=3e-4, beta1=0.8, beta2=0.95)):
        ours, theirs = fn(model, cfg), engine.configure_optimizer(model, cfg, torch.device("cpu"))
        assert type(ours) is type(theirs), f"{name}: {type(ours).__name__} vs {type(theirs).__name__}"
        assert len(ours.param_groups) == len(theirs.param_groups), f"{name}: different parameter groups"
        for a, b in zip(ours.param_groups, theirs.param_groups):
            assert [id(p) for p in a["params"]] == [id(p) for p in b["params"]], f"{name}: different parameters"
            settings = {k: v for k, v in a.items() if k != "params"}
            assert settings == {k: v for k, v in b.items() if k != "params"}, f"{name}: {settings}"


def check_estimate_loss(fn, name: str) -> None:
    torch.manual_seed(0)
    model = gfs.GPT(small_gpt_config(n_layer=1, dropout=0.25))
    tokens = [torch.randint(VOCAB, (300,), generator=torch.Generator().manual_seed(s)) for s in (0, 1)]
    splits = {"train": tokens[0], "val": tokens[1]}
    for seed in (0, 1337):
        for training in (True, False):
            model.train(training)
            ours = fn(model, splits, 4, BLOCK, 3, seed=seed)
            assert model.training == training, f"{name} must leave the model in the mode it found it in"
            theirs = engine.estimate_loss(model, splits, 4, BLOCK, 3, seed=seed)
            assert ours == theirs, f"{name} seed {seed}: {ours} vs train.estimate_loss {theirs}"


def check_train_by_hand(fn, name: str) -> None:
    """Copies of one model, trained by the hand loop and by gfs.train: the same losses and weights."""
    tokens = torch.randint(VOCAB, (2000,), generator=torch.Generator().manual_seed(0))
    train_data, val_data = tokens[:1600], tokens[1600:]
    base = gfs.TrainConfig(train_window=BLOCK, batch_size=4, max_iters=7, warmup_iters=2, eval_interval=3,
                           eval_iters=2, learning_rate=3e-3, min_lr=3e-4, device="cpu", dtype="float32",
                           progress=False)
    for cfg in (base, base.replace(grad_clip=0.0, decay_lr=False, seed=7)):
        torch.manual_seed(cfg.seed)
        model = gfs.GPT(small_gpt_config(dropout=0.1, bias=True))  # dropout: the masks must line up too
        ours, theirs = copy.deepcopy(model), copy.deepcopy(model)
        history, step_losses = fn(ours, cfg, train_data, val_data)
        result = gfs.train(cfg, model=theirs, train_data=train_data, val_data=val_data)
        what = f"{name} vs gfs.train (grad_clip {cfg.grad_clip}, decay_lr {cfg.decay_lr})"
        assert [h["iter"] for h in history] == [h["iter"] for h in result.history] == [0, 3, 6, 7], what
        for h, r in zip(history, result.history):
            for k in ("train_loss", "val_loss"):
                assert abs(h[k] - r[k]) < 1e-6, f"{what}: {k} at iter {h['iter']}: {h[k]} vs {r[k]}"
        assert len(step_losses) == len(result.step_losses) == cfg.max_iters, what
        assert max(abs(a - b) for a, b in zip(step_losses, result.step_losses)) < 1e-6, f"{what}: step losses"
        for (k, a), b in zip(ours.named_parameters(), theirs.parameters()):
            assert torch.allclose(a, b, rtol=0, atol=1e-6), f"{what}: {k} differs after training"


def check_hand_cached_step(fn, name: str) -> None:
    """05's KV cache by hand: step by step the logits of GPT.forward_cached and of recomputing, and
    hand_generate (the same cache with the package's sliding window) gives model.generate's tokens."""
    ns, _ = notebook_namespace("05_generation.ipynb")
    for bias in (False, True):
        torch.manual_seed(0)
        m = gfs.GPT(gfs.GPTConfig(vocab_size=VOCAB, block_size=BLOCK, n_layer=2, n_head=N_HEAD, n_embd=N_EMBD,
                                  dropout=0.0, bias=bias)).eval()
        idx = token_input()[0]  # (2, BLOCK)
        hand, package = ns["empty_cache"](m, 2), m.new_kv_cache(2)
        with torch.no_grad():
            for t in range(BLOCK):
                ours = fn(m, idx[:, t : t + 1], t, hand)
                assert_same_output(ours, m.forward_cached(idx[:, t : t + 1], package), f"{name} step {t} vs cache")
                assert_same_output(ours, m(idx[:, : t + 1])[0][:, -1], f"{name} step {t} vs recomputing")
            gens = [torch.Generator().manual_seed(1) for _ in range(2)]
            out = ns["hand_generate"](m, idx[:, :2], 3 * BLOCK, gens[0])  # past block_size: the window slides
            assert torch.equal(out, m.generate(idx[:, :2], 3 * BLOCK, use_kv_cache=True, generator=gens[1])), name


# name -> check(the hand-built object, name): functions, and classes checked by behaviour
FUNCTION_CHECKS = {
    "init_weights": check_init_weights,
    "get_batch": check_get_batch,
    "causal_mask": check_causal_mask,
    "batched_multi_head_attention": check_mha_function,
    "sdpa_multi_head_attention": check_mha_function,
    "copy_block_weights": check_copy_block_weights,
    "HandGPT": check_hand_gpt,
    "get_lr": check_get_lr,
    "configure_optimizer": check_configure_optimizer,
    "estimate_loss": check_estimate_loss,
    "train_by_hand": check_train_by_hand,
    "hand_cached_step": check_hand_cached_step,
}

CHECKED = set(MODULE_CHECKS) | set(FUNCTION_CHECKS)


# --------------------------------------------------------------------------- #
# The tests
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("notebook", sorted(EXPECTED))
def test_notebook_defines_its_classes(notebook):
    _, names = notebook_namespace(notebook)
    missing = [n for n in EXPECTED[notebook] if n not in names]
    assert not missing, f"{notebook} should build these by hand: {', '.join(missing)}"


@pytest.mark.parametrize("notebook", sorted(EXPECTED))
def test_every_package_name_is_checked(notebook):
    _, names = notebook_namespace(notebook)
    pkg = package_names()
    unchecked = sorted({n for n in names if n in pkg and n not in CHECKED})
    assert not unchecked, (
        f"{notebook} defines {', '.join(unchecked)}, which the package also defines; "
        "add a check for it to tests/test_notebook_sync.py"
    )
    for hand, package_name in ALIASES.items():
        assert package_name in pkg, f"the package no longer has {package_name} (checked against {hand})"


CASES = [(nb, name) for nb, names in sorted(EXPECTED.items()) for name in names]


@pytest.mark.parametrize("notebook,name", CASES, ids=[f"{nb.split('_')[0]}-{name}" for nb, name in CASES])
def test_hand_built_matches_package(notebook, name):
    obj = hand_built(notebook, name)
    if name in MODULE_CHECKS:
        assert inspect.isclass(obj) and issubclass(obj, nn.Module), f"{notebook}: {name} should be an nn.Module"
        check_module(obj, name)
    elif name in FUNCTION_CHECKS:
        FUNCTION_CHECKS[name](obj, name)
    else:  # pragma: no cover - EXPECTED names always have a check
        pytest.fail(f"no check for {name}")


def test_checks_cover_expected_names():
    for notebook, names in EXPECTED.items():
        for name in names:
            assert name in CHECKED, f"{notebook}: {name} is expected but has no check"
            assert ALIASES.get(name, name) in package_names(), f"the package has no {ALIASES.get(name, name)}"
