"""Which tensor of another format is which parameter of our GPT: one table per format, used both ways.

A pretrained model arrives as a table of named tensors (safetensors, GGUF).
Each format names the same few matrices its own way, and two of them store
some matrices differently from nn.Linear. A `Rename` row says, for one of our
parameters, which tensor(s) of the other format hold it and how:

- `theirs` is one name, or several that are stacked along dim 0 into our one
  tensor. Llama keeps q_proj, k_proj and v_proj apart; we fuse them into
  `c_attn` (rows: all queries, then keys, then values). Exporting splits them
  again, with the sizes the config gives (n_embd, then kv_dim twice).
- `transpose`: GPT-2's Conv1D layers store (in, out), nn.Linear (out, in).

`{i}` stands for the layer number. `import_state` reads a table forwards
(their names -> ours), `export_state` backwards (ours -> theirs); so a name is
written once, in one row, and both directions agree by construction.
Rows whose parameter our model lacks (the output layer of a tied model) are
left out by `rows_for`.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from .model import GPTConfig


@dataclass(frozen=True)
class Rename:
    ours: str  # our parameter, e.g. "transformer.h.{i}.attn.c_attn.weight"
    theirs: tuple[str, ...]  # the other format's tensor(s), stacked along dim 0 in this order
    transpose: bool = False  # stored (in, out), as GPT-2's Conv1D does

    def names(self, i: int | None = None) -> tuple[str, tuple[str, ...]]:
        """This row's names for layer i (rows outside the blocks take no i)."""
        return self.ours.format(i=i), tuple(t.format(i=i) for t in self.theirs)


def _row(ours: str, *theirs: str, transpose: bool = False) -> Rename:
    return Rename(ours, tuple(theirs), transpose)


_H = "transformer.h.{i}."  # our block prefix

# GPT-2 as Hugging Face saves GPT2Model (GPT2LMHeadModel adds "transformer." in front; pretrained.py
# strips it). wte doubles as the output layer: GPT-2 is always tied.
GPT2_TENSORS = (
    _row("transformer.wte.weight", "wte.weight"),
    _row("transformer.wpe.weight", "wpe.weight"),
    _row(_H + "ln_1.weight", "h.{i}.ln_1.weight"),
    _row(_H + "ln_1.bias", "h.{i}.ln_1.bias"),
    _row(_H + "attn.c_attn.weight", "h.{i}.attn.c_attn.weight", transpose=True),
    _row(_H + "attn.c_attn.bias", "h.{i}.attn.c_attn.bias"),
    _row(_H + "attn.c_proj.weight", "h.{i}.attn.c_proj.weight", transpose=True),
    _row(_H + "attn.c_proj.bias", "h.{i}.attn.c_proj.bias"),
    _row(_H + "ln_2.weight", "h.{i}.ln_2.weight"),
    _row(_H + "ln_2.bias", "h.{i}.ln_2.bias"),
    _row(_H + "mlp.c_fc.weight", "h.{i}.mlp.c_fc.weight", transpose=True),
    _row(_H + "mlp.c_fc.bias", "h.{i}.mlp.c_fc.bias"),
    _row(_H + "mlp.c_proj.weight", "h.{i}.mlp.c_proj.weight", transpose=True),
    _row(_H + "mlp.c_proj.bias", "h.{i}.mlp.c_proj.bias"),
    _row("transformer.ln_f.weight", "ln_f.weight"),
    _row("transformer.ln_f.bias", "ln_f.bias"),
)

# Llama (LlamaForCausalLM's safetensors): RMSNorm, separate q/k/v, SwiGLU (gate, up, down), RoPE.
_L = "model.layers.{i}."
LLAMA_TENSORS = (
    _row("transformer.wte.weight", "model.embed_tokens.weight"),
    _row(_H + "ln_1.weight", _L + "input_layernorm.weight"),
    _row(_H + "attn.c_attn.weight", _L + "self_attn.q_proj.weight", _L + "self_attn.k_proj.weight",
         _L + "self_attn.v_proj.weight"),
    _row(_H + "attn.c_proj.weight", _L + "self_attn.o_proj.weight"),
    _row(_H + "ln_2.weight", _L + "post_attention_layernorm.weight"),
    _row(_H + "mlp.c_gate.weight", _L + "mlp.gate_proj.weight"),
    _row(_H + "mlp.c_fc.weight", _L + "mlp.up_proj.weight"),
    _row(_H + "mlp.c_proj.weight", _L + "mlp.down_proj.weight"),
    _row("transformer.ln_f.weight", "model.norm.weight"),
    _row("lm_head.weight", "lm_head.weight"),  # only when the embeddings are not tied
)

# The same Llama in llama.cpp's GGUF names. attn_q and attn_k rows are permuted there (see llama.py).
_B = "blk.{i}."
GGUF_LLAMA_TENSORS = (
    _row("transformer.wte.weight", "token_embd.weight"),
    _row(_H + "ln_1.weight", _B + "attn_norm.weight"),
    _row(_H + "attn.c_attn.weight", _B + "attn_q.weight", _B + "attn_k.weight", _B + "attn_v.weight"),
    _row(_H + "attn.c_proj.weight", _B + "attn_output.weight"),
    _row(_H + "ln_2.weight", _B + "ffn_norm.weight"),
    _row(_H + "mlp.c_gate.weight", _B + "ffn_gate.weight"),
    _row(_H + "mlp.c_fc.weight", _B + "ffn_up.weight"),
    _row(_H + "mlp.c_proj.weight", _B + "ffn_down.weight"),
    _row("transformer.ln_f.weight", "output_norm.weight"),
    _row("lm_head.weight", "output.weight"),  # only when the embeddings are not tied
)


class WeightMapError(ValueError):
    """The tensors do not fit the table: names missing or unknown."""


def rows_for(table: tuple[Rename, ...], config: GPTConfig):
    """(our name, their names, transpose) for every parameter a model with this config has."""
    for row in table:
        if row.ours == "lm_head.weight" and config.tie_weights:
            continue  # tied: wte is the output layer
        if row.ours == "transformer.wpe.weight" and config.pos != "learned":
            continue
        layers = range(config.n_layer) if "{i}" in row.ours else [None]
        for i in layers:
            ours, theirs = row.names(i)
            yield ours, theirs, row.transpose


def _part_sizes(config: GPTConfig, n_parts: int, total: int) -> list[int]:
    """How a stacked tensor of `total` rows splits: 1 part, or q, k, v."""
    if n_parts == 1:
        return [total]
    kv_dim = config.kv_heads * config.head_size
    sizes = [config.n_embd, kv_dim, kv_dim]
    if n_parts != 3 or sum(sizes) != total:
        raise WeightMapError(f"cannot split {total} rows into {n_parts} parts")
    return sizes


def _names(names) -> str:
    names = sorted(names)
    return ", ".join(names[:3]) + (f" and {len(names) - 3} more" if len(names) > 3 else "")


def import_state(theirs: dict[str, torch.Tensor], table, config: GPTConfig) -> dict[str, torch.Tensor]:
    """Their tensors -> our parameter names (every tensor of theirs used exactly once)."""
    rows = list(rows_for(table, config))
    missing = {n for _, names, _ in rows for n in names if n not in theirs}
    unused = set(theirs) - {n for _, names, _ in rows for n in names}
    if missing or unused:
        what = f"lacks {_names(missing)}" if missing else f"holds tensors this model has not: {_names(unused)}"
        raise WeightMapError(what)
    ours = {}
    for our_name, names, transpose in rows:
        parts = [theirs[n].t() if transpose else theirs[n] for n in names]
        ours[our_name] = (torch.cat(parts, dim=0) if len(parts) > 1 else parts[0]).contiguous()
    return ours


def export_state(ours: dict[str, torch.Tensor], table, config: GPTConfig) -> dict[str, torch.Tensor]:
    """Our parameters -> their names: import_state read backwards."""
    theirs = {}
    for our_name, names, transpose in rows_for(table, config):
        tensor = ours[our_name]
        parts = tensor.split(_part_sizes(config, len(names), tensor.size(0)), dim=0)
        for name, part in zip(names, parts):
            theirs[name] = (part.t() if transpose else part).contiguous()
    return theirs
