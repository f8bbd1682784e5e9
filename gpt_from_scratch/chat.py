"""Chatting with a pretrained chat model, on our own GPT and its KV cache.

A chat model was fine-tuned on conversations written in one fixed layout, its
chat template. SmolLM2's is ChatML: every turn is

    <|im_start|>ROLE\\nTEXT<|im_end|>\\n

with ROLE system, user or assistant, and the model's reply starts after
"<|im_start|>assistant\\n" and ends when it writes <|im_end|>. The template
ships with the model (tokenizer_config.json's `chat_template`, or the GGUF key
`tokenizer.chat_template`) as a Jinja program; we do not run it, we recognise
ChatML in it and read its default system prompt. `<|im_start|>` and
`<|im_end|>` are special tokens: the user's text is always encoded as plain
text, so typing "<|im_end|>" cannot end a turn.

The KV cache is kept across turns. The conversation is one growing token
sequence; the cache holds the keys and values of everything fed so far, so a
new turn feeds only its own tokens (the end of the last reply, the user's turn
and "<|im_start|>assistant\\n"), not the whole conversation again. When the
next turn would not fit in the context (block_size), the oldest exchanges are
dropped (the system prompt stays) and the cache is refilled from what is left.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass
from typing import Callable, Iterator

import torch

from .generate import check_sampling_args, sample_next_token

IM_START, IM_END = "<|im_start|>", "<|im_end|>"
END_OF_TEXT = "<|endoftext|>"


class ChatError(ValueError):
    """The model cannot chat (no chat template), or the settings are wrong."""


@dataclass
class ChatTemplate:
    """ChatML: the layout of the turns, and the system prompt the template adds when none is given."""

    start_id: int  # <|im_start|>
    end_id: int  # <|im_end|>
    default_system: str | None = None

    def turn(self, tokenizer, role: str, text: str) -> list[int]:
        """One whole turn: <|im_start|>role\\ntext<|im_end|>\\n (the text as plain text, never special)."""
        return [self.start_id, *tokenizer.encode_ordinary(f"{role}\n{text}"), self.end_id,
                *tokenizer.encode_ordinary("\n")]

    def reply_prompt(self, tokenizer) -> list[int]:
        """What the model continues from: <|im_start|>assistant\\n."""
        return [self.start_id, *tokenizer.encode_ordinary("assistant\n")]

    def reply_end(self, tokenizer) -> list[int]:
        """What closes a reply in the conversation: <|im_end|>\\n."""
        return [self.end_id, *tokenizer.encode_ordinary("\n")]


def chat_template_for(tokenizer) -> ChatTemplate | None:
    """The tokenizer's chat template, or None when the model has none (our character models).

    A template that writes <|im_start|> is ChatML; a tokenizer with no template text but
    both ChatML tokens among its special tokens is taken to be ChatML too (SmolLM2's family).
    """
    special = getattr(tokenizer, "special_tokens", {})
    if IM_START not in special or IM_END not in special:
        return None
    text = getattr(tokenizer, "chat_template", None)
    if text is not None and IM_START not in text:
        return None  # a template of another layout: we do not guess
    default = None
    if text:
        found = re.search(r"<\|im_start\|>system(?:\n|\\n)(.*?)<\|im_end\|>", text, re.DOTALL)
        default = found.group(1) if found else None
    return ChatTemplate(special[IM_START], special[IM_END], default)


class ChatSession:
    """A conversation with one model: `send` a user turn, read the reply as it streams.

    >>> session = ChatSession(model, tokenizer, temperature=0)       # doctest: +SKIP
    >>> print("".join(session.send("What is the capital of France?")))  # doctest: +SKIP
    The capital of France is Paris.

    `tokens` is the conversation as the cache holds it; `last_fed` how many tokens the
    last turn fed (its new tokens only), `prompt_length` the length of `tokens` then;
    `notes` the messages about dropped turns.
    """

    def __init__(self, model, tokenizer, system: str | None = None, max_new_tokens: int = 256,
                 temperature: float = 0.7, top_k: int | None = None, top_p: float | None = None,
                 seed: int | None = None, on_note: Callable[[str], None] | None = None):
        self.template = chat_template_for(tokenizer)
        if self.template is None:
            raise ChatError("this model has no chat template (it was not trained on conversations); "
                            "use `sample` to continue text instead, or a chat model such as a SmolLM2 -Instruct")
        check_sampling_args(temperature, top_k, top_p, max_new_tokens)
        if max_new_tokens >= model.config.block_size:
            raise ChatError(f"max_new_tokens must be below the context, {model.config.block_size} tokens")
        self.model, self.tokenizer = model, tokenizer
        self.system = system if system is not None else self.template.default_system
        self.max_new_tokens, self.temperature, self.top_k, self.top_p = max_new_tokens, temperature, top_k, top_p
        self.generator = None
        if seed is not None:
            self.generator = torch.Generator(device=model.lm_head.weight.device).manual_seed(seed)
        self.stop_ids = {self.template.end_id, tokenizer.special_tokens.get(END_OF_TEXT, self.template.end_id)}
        self.notes: list[str] = []
        self.on_note = on_note or self.notes.append
        self.reset()

    def reset(self) -> None:
        """Start a new conversation: an empty cache, only the system prompt left."""
        self.exchanges: list[list[int]] = []  # past exchanges, each complete: user turn, reply, <|im_end|>\n
        self.cache = self.model.new_kv_cache(1)
        self.tokens: list[int] = []  # what the cache holds
        self.unfed: list[int] = []  # the end of the last reply, fed with the next turn
        self.last_fed = 0

    def _system_ids(self) -> list[int]:
        return self.template.turn(self.tokenizer, "system", self.system) if self.system else []

    def _to_feed(self, prompt: list[int]) -> list[int]:
        """The tokens to feed for this turn; refills the cache from fewer turns if the context is full."""
        budget = self.model.config.block_size - self.max_new_tokens
        if len(self.tokens) + len(self.unfed) + len(prompt) <= budget:
            return self.unfed + prompt
        kept = list(self.exchanges)
        system = self._system_ids()
        while kept and len(system) + sum(map(len, kept)) + len(prompt) > budget:
            kept.pop(0)
        dropped = len(self.exchanges) - len(kept)
        if len(system) + len(prompt) > budget:
            system = []
        full = [t for ex in kept for t in ex] + prompt
        if len(full) > budget:
            full = full[-budget:]
            self.on_note(f"note: this turn alone is longer than the context ({budget} tokens left for it); "
                         "the model sees only its end")
        else:
            self.on_note(f"note: the conversation outgrew the context ({self.model.config.block_size} tokens); "
                         f"dropped the oldest {dropped} exchange(s)" + ("" if system or not self.system
                                                                         else " and the system prompt"))
        self.exchanges = kept
        self.cache, self.tokens = self.model.new_kv_cache(1), []
        return system + full

    @torch.no_grad()
    def send(self, text: str) -> Iterator[str]:
        """Add the user's turn and stream the reply, piece by piece (complete characters only)."""
        if self.max_new_tokens == 0:
            return
        if not self.tokens and not self.unfed:
            self.unfed = self._system_ids()
        prompt = self.template.turn(self.tokenizer, "user", text) + self.template.reply_prompt(self.tokenizer)
        feed = self._to_feed(prompt)
        logits = self._feed(feed)
        # what the last turn fed, the conversation's length then, and the logits of the reply's first token
        self.last_fed, self.prompt_length, self.prompt_logits = len(feed), len(self.tokens), logits
        reply: list[int] = []
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        for _ in range(self.max_new_tokens):
            next_id = int(sample_next_token(logits, self.temperature, self.top_k, self.top_p, self.generator))
            if next_id in self.stop_ids:
                break
            reply.append(next_id)
            logits = self._feed([next_id])
            piece = decoder.decode(self.tokenizer.vocab.get(next_id, b""))
            if piece:
                yield piece
        rest = decoder.decode(b"", final=True)
        if rest:
            yield rest
        self.unfed = self.template.reply_end(self.tokenizer)
        self.exchanges.append(prompt + reply + self.unfed)

    def _feed(self, ids: list[int]) -> torch.Tensor:
        """Run new tokens through the cache; the logits of the next token (1, V)."""
        device = self.model.lm_head.weight.device
        logits = self.model.forward_cached(torch.tensor([ids], dtype=torch.long, device=device), self.cache)
        self.tokens.extend(ids)
        return logits
