"""gpt_from_scratch: a small, readable GPT built step by step in the notebooks."""

__version__ = "0.1.0"

# The public home of the project. Badges, the notebooks' setup cell and
# pyproject.toml are made from this one value (see tools/badges.py).
REPO_URL = "https://github.com/gpt-from-scratch/gpt-from-scratch"
REPO_BRANCH = "main"

from .teaching import (  # noqa: E402
    AttentionLanguageModel,
    Block,
    FeedForward,
    Head,
    MultiHeadAttention,
    batched_multi_head_attention,
    sdpa_multi_head_attention,
)
from .bigram import BigramLanguageModel  # noqa: E402
from . import plotting  # noqa: E402  (matplotlib itself loads only when a figure is drawn)
from . import exercises  # noqa: E402  (the notebooks call gfs.exercises.check_...)
from .checkpoint import CheckpointError, load_checkpoint, save_checkpoint, shipped_checkpoint_path  # noqa: E402
from .data import (  # noqa: E402
    DATA_SHA256,
    DATA_URL,
    DataError,
    get_batch,
    load_text,
    prepare_data,
    train_val_split,
)
from .device import get_device  # noqa: E402
from .generate import generate_text, sample_next_token  # noqa: E402
from .model import GPT, GPTConfig, copy_block_weights  # noqa: E402
from .notebook import notebook_setup  # noqa: E402
from .tokenizer import CharTokenizer, Tokenizer  # noqa: E402
from .train import (  # noqa: E402
    PRESETS, ConfigError, TrainConfig, evaluate_split, evaluate_text, estimate_loss, train,
)
from .bpe import BPETokenizer, GPT2_SPLIT_PATTERN, GPT4_SPLIT_PATTERN  # noqa: E402
from . import loading  # noqa: E402,F401  (registers the from_pretrained loaders; safetensors, gguf load lazily)

__all__ = [
    "BPETokenizer", "GPT2_SPLIT_PATTERN", "GPT4_SPLIT_PATTERN",
    "REPO_URL", "copy_block_weights", "AttentionLanguageModel", "BigramLanguageModel", "Block", "CharTokenizer",
    "CheckpointError", "ConfigError", "DataError", "FeedForward", "GPT", "GPTConfig", "Head",
    "MultiHeadAttention", "PRESETS", "Tokenizer", "TrainConfig", "batched_multi_head_attention",
    "evaluate_split", "evaluate_text", "estimate_loss", "generate_text", "get_batch", "get_device", "load_checkpoint",
    "load_text", "notebook_setup", "prepare_data", "sample_next_token", "save_checkpoint",
    "sdpa_multi_head_attention", "shipped_checkpoint_path", "train", "train_val_split",
]
