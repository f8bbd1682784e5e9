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


# --- chapter 10: a real model (notebooks/10_a_real_model.ipynb) ----------------------------
# The references these checkers compare with are written out here, small, so that a message
# can name the exact mistake; the tests check them against the package's loader.


def _gguf_to_halves(w, n_head: int):
    """GGUF's q or k rows (n_head * hs, C), adjacent pairs per head -> Hugging Face's halves layout.

    In each head, GGUF row 2j + s holds Hugging Face's row j + s * hs/2 (s = 0 or 1).
    """
    rows, cols = w.shape
    return w.reshape(n_head, rows // n_head // 2, 2, cols).transpose(1, 2).reshape(rows, cols)


def _halves_to_gguf(w, n_head: int):
    """The permutation llama.cpp's converter applies (halves -> adjacent pairs): the mistake to name."""
    rows, cols = w.shape
    return w.reshape(n_head, 2, rows // n_head // 2, cols).transpose(1, 2).reshape(rows, cols)


def _unpermute_mistake(out, w, n_head: int) -> str | None:
    """What is wrong with out = fn(w, n_head), for w[r, c] = 100 r + c; None when right."""
    import torch

    if not isinstance(out, torch.Tensor):
        return f"your function returned {type(out).__name__}; return a tensor of shape {tuple(w.shape)}"
    if tuple(out.shape) != tuple(w.shape):
        return f"your result has shape {tuple(out.shape)}, expected {tuple(w.shape)}: move rows, keep the shape"
    want = _gguf_to_halves(w, n_head)
    if torch.equal(out, want):
        return None
    hs = w.size(0) // n_head
    labels = (out[:, 0] / 100).round().long()  # which input row each output row came from
    if not (torch.equal(out, w[labels.clamp(0, w.size(0) - 1)]) and sorted(labels.tolist()) == list(range(w.size(0)))):
        return "your result holds values that are not the input's rows, each once: undo the permutation by moving whole rows"
    if torch.equal(out, w):
        return "nothing moved: the rows are still in GGUF's adjacent-pair order"
    if torch.equal(out, _halves_to_gguf(w, n_head)):
        return ("you applied llama.cpp's permutation (halves -> pairs) once more; undo it instead: "
                "row 2j + s of a head goes to row j + s * hs/2")
    moved = (labels // hs != torch.arange(w.size(0)) // hs).nonzero()
    if len(moved):
        r = moved[0].item()
        return (f"output row {r} (head {r // hs}) came from input row {labels[r].item()} (head {labels[r].item() // hs}): "
                f"permute inside each head of {hs} rows (reshape by n_head first)")
    r = (labels != want[:, 0].round().long()).nonzero()[0].item()
    return f"inside head {r // hs}, output row {r} came from input row {labels[r].item()}, expected row {want[r, 0].item() / 100:.0f}"


@guarded
def check_unpermute_qk(fn: Callable, weight=None, n_head: int | None = None) -> bool:
    """Exercise 10.1: fn(w, n_head) undoes GGUF's q/k row permutation, for any head count and width.

    Checked on labelled rows (so a mistake can be named), on random matrices, and on `weight`
    (a real attn_q or attn_k tensor from the GGUF, with its n_head) when the notebook passes one.
    """
    import torch

    labelled = 100 * torch.arange(3 * 8.0)[:, None] + torch.arange(5.0)  # 3 heads of 8 rows: w[r, c] = 100 r + c
    out, err = run_answer(fn, labelled.clone(), 3)
    if err is None and out is None:
        return verdict(NOT_TRIED, "write my_unpermute(w, n_head): reshape to (n_head, hs/2, 2, C), swap two axes, reshape back")
    if err:
        return verdict(WRONG, err)
    mistake = _unpermute_mistake(out, labelled, 3)
    if mistake:
        return verdict(WRONG, f"3 heads of 8 rows (w[r, c] = 100 r + c): {mistake}")
    gen = torch.Generator().manual_seed(10)
    cases = [(torch.randn(9 * 64, 40, generator=gen), 9), (torch.randn(4 * 6, 7, generator=gen), 4)]
    if weight is not None:
        cases.append((torch.as_tensor(weight).float(), int(n_head)))
    for w, nh in cases:
        out, err = run_answer(fn, w.clone(), nh)
        if err:
            return verdict(WRONG, f"on a ({w.size(0)}, {w.size(1)}) matrix with n_head={nh}: {err}")
        if not isinstance(out, torch.Tensor) or out.shape != w.shape or not torch.equal(out, _gguf_to_halves(w, nh)):
            return verdict(WRONG, f"right on the small example, wrong on a ({w.size(0)}, {w.size(1)}) matrix with "
                                  f"n_head={nh}: is the head size w.size(0) // n_head, and are whole rows moved?")
    real = " and on the model's own weight" if weight is not None else ""
    return verdict(CORRECT, f"your my_unpermute gives Hugging Face's halves layout on every test{real}")


def _kv_cache_reference(config, context: int, bytes_per_number: int = 4) -> int:
    """Bytes of keys and values: 2 (k and v) x layers x key/value heads x head size x positions x bytes."""
    n_kv = config.n_kv_head or config.n_head
    return 2 * config.n_layer * n_kv * (config.n_embd // config.n_head) * context * bytes_per_number


@guarded
def check_kv_cache_bytes(fn: Callable) -> bool:
    """Exercise 10.2: fn(config, context, bytes_per_number=4) is the KV cache's size in bytes, with GQA.

    Compared with the formula on SmolLM2-135M's shape and two others, and with the bytes the
    package's own KVCache allocates for a small model.
    """
    import torch

    from .model import GPTConfig, KVCache

    smol = GPTConfig(vocab_size=49152, block_size=8192, n_layer=30, n_head=9, n_embd=576, n_kv_head=3,
                     dropout=0.0, norm="rmsnorm", activation="swiglu", pos="rope", mlp_hidden=1536)
    out, err = run_answer(fn, smol, 1000, 4)
    if err is None and out is None:
        return verdict(NOT_TRIED, "write kv_cache_bytes(config, context, bytes_per_number=4): keys AND values, "
                                  "for every layer, n_kv_head heads of head size numbers per position")
    if err:
        return verdict(WRONG, err)
    want = _kv_cache_reference(smol, 1000, 4)
    if not isinstance(out, (int, float)) or isinstance(out, bool):
        return verdict(WRONG, f"your function returned {type(out).__name__}; return a number of bytes")
    if out != want:
        known = {3.0: "you used n_head (9) where the cache holds n_kv_head (3) key/value heads",
                 0.5: "the cache holds keys AND values: two tensors per layer",
                 1 / 30: "every one of the 30 layers keeps its own keys and values",
                 0.25: "count bytes, not numbers: multiply by bytes_per_number",
                 1 / 64: "each head holds head_size = n_embd // n_head numbers per position",
                 9.0: "each head holds head_size = n_embd // n_head numbers per position, not n_embd"}
        why = next((msg for ratio, msg in known.items() if abs(out / want - ratio) < 1e-9), None)
        return verdict(WRONG, f"SmolLM2-135M, 1,000 positions in float32: you say {out:,.0f} bytes, expected "
                              f"{want:,}" + (f": {why}" if why else ""))
    for config, context, nbytes in [(GPTConfig(n_kv_head=None), 256, 2), (GPTConfig(n_head=6, n_kv_head=2), 77, 4)]:
        out, err = run_answer(fn, config, context, nbytes)
        expected = _kv_cache_reference(config, context, nbytes)
        if err or out != expected:
            hint = " (n_kv_head=None means one key/value head per query head)" if config.n_kv_head is None else ""
            return verdict(WRONG, f"right for SmolLM2, but for {config.n_layer} layers, {config.n_head} heads, "
                                  f"n_kv_head={config.n_kv_head}, {context} positions, {nbytes} bytes each: "
                                  f"{err or f'{out} instead of {expected}'}{hint}")
    small = GPTConfig(vocab_size=10, block_size=48, n_layer=2, n_head=4, n_embd=32, n_kv_head=2, pos="rope")
    allocated = KVCache(small, 1, "cpu", torch.float32).nbytes  # a full cache of block_size positions
    out, err = run_answer(fn, small, small.block_size, 4)
    if err or out != allocated:
        return verdict(WRONG, f"the package's KVCache for a small model allocates {allocated} bytes; you say {err or out}")
    return verdict(CORRECT, f"SmolLM2-135M keeps {want // 1000:,} bytes per token in float32 "
                            f"({want / 1e6:.0f} MB for 1,000 tokens), and the package's KVCache agrees")



def _chat_text(tokenizer, messages, add_generation_prompt: bool = True) -> str:
    """The conversation as the tokenizer's own chat template writes it (Jinja, as transformers runs it)."""
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    env = ImmutableSandboxedEnvironment(trim_blocks=True, lstrip_blocks=True)
    return env.from_string(tokenizer.chat_template).render(messages=messages, add_generation_prompt=add_generation_prompt)


CHAT_EXAMPLES = (
    [{"role": "user", "content": "What is the capital of France?"}],
    [{"role": "system", "content": "You are a pirate."}, {"role": "user", "content": "Hello!"}],
    [{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello! How can I help?"},
     {"role": "user", "content": "Tell me a joke about 42 cats."}],
)


def _chat_mistake(tokenizer, messages, out) -> str | None:
    """What is wrong with out, the learner's ids for messages; None when they are the template's ids."""
    want_text = _chat_text(tokenizer, messages)
    want = tokenizer.encode(want_text, allowed_special="all")
    if not isinstance(out, (list, tuple)) or not all(isinstance(i, int) and not isinstance(i, bool) for i in out):
        return f"return a list of ints (token ids), not {type(out).__name__}"
    if list(out) == want:
        return None
    try:
        got_text = tokenizer.decode(list(out))
    except Exception:  # noqa: BLE001 - ids outside the vocabulary
        return f"some ids are not in the vocabulary of {tokenizer.vocab_size:,} tokens"
    start = tokenizer.special_tokens.get("<|im_start|>")
    if got_text == want_text:
        return ("the text is right but the ids are not: <|im_start|> and <|im_end|> must be one special token each "
                "(encode with allowed_special=\"all\")")
    header = "<|im_start|>assistant\n"
    missing = want_text[len(got_text):] if want_text.startswith(got_text) else None
    if missing and header.endswith(missing):  # the reply's header, or its end, left off
        return "end with the assistant's header, '<|im_start|>assistant\\n': the model's reply follows it"
    if messages[0]["role"] != "system" and want_text.endswith(got_text) and got_text.startswith("<|im_start|>user"):
        return "a conversation without a system message starts with the template's default system message"
    if list(out).count(start) != want.count(start):
        return f"{list(out).count(start)} <|im_start|> tokens, expected {want.count(start)}: one per message, one for the reply"
    k = next((i for i, (a, b) in enumerate(zip(got_text, want_text)) if a != b), min(len(got_text), len(want_text)))
    return f"the text differs at character {k}: yours {got_text[max(0, k - 12):k + 12]!r}, expected {want_text[max(0, k - 12):k + 12]!r}"


@guarded
def check_chat_ids(fn: Callable, tokenizer) -> bool:
    """Exercise 10.3: fn(tokenizer, messages) gives a conversation's ChatML ids, as the model's chat template does.

    Checked on three conversations (without a system message, with one, and several turns), against the
    template the tokenizer carries, rendered as transformers renders it.
    """
    if getattr(tokenizer, "chat_template", None) is None:
        return verdict(WRONG, "this tokenizer has no chat template: pass the SmolLM2 tokenizer of the notebook")
    for messages in CHAT_EXAMPLES:
        out, err = run_answer(fn, tokenizer, [dict(m) for m in messages])
        if err is None and out is None:
            return verdict(NOT_TRIED, "write my_chat_ids(tokenizer, messages): '<|im_start|>' + role + '\\n' + content "
                                      "+ '<|im_end|>\\n' per message, then the assistant's header; encode it")
        roles = "/".join(m["role"] for m in messages)
        if err:
            return verdict(WRONG, f"on a {roles} conversation: {err}")
        mistake = _chat_mistake(tokenizer, messages, out)
        if mistake:
            return verdict(WRONG, f"on a {roles} conversation: {mistake}")
    return verdict(CORRECT, f"your ids equal the chat template's on {len(CHAT_EXAMPLES)} conversations, "
                            "default system message included")
