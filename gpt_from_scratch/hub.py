"""The Hugging Face Hub: which repository holds each model, and one way to download from it.

Low in the package: the loaders of weights (pretrained.py) and of tokenizers
(bpe.py) import this module; it imports nothing of the package. Files are
downloaded once, with huggingface_hub's progress bar, and then read from its
cache. huggingface_hub is optional: `pip install -e ".[gpt2]"`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

# Our short names -> repositories on the Hub, per model family. GPT-2 now lives under
# "openai-community/"; the bare names ("gpt2") are its old ids, which older caches may hold.
GPT2_REPOS = {
    "gpt2": "openai-community/gpt2",  # 124M parameters
    "gpt2-medium": "openai-community/gpt2-medium",  # 350M
    "gpt2-large": "openai-community/gpt2-large",  # 774M
    "gpt2-xl": "openai-community/gpt2-xl",  # 1558M
}
# Hugging Face's small Llama-family models (chapter 10), base and chat ("-Instruct").
SMOLLM2_REPOS = tuple(
    f"HuggingFaceTB/SmolLM2-{size}{kind}" for size in ("135M", "360M", "1.7B") for kind in ("", "-Instruct")
)
# What a model folder on the Hub holds: the files we need, and the tokenizer's, which a repository may lack.
MODEL_FILES = ("config.json", "model.safetensors")
# Newer repositories keep the chat template in its own file, chat_template.jinja (tokenizer_files.py reads both).
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "chat_template.jinja")
INSTALL_HINT = 'pip install huggingface_hub (or pip install -e ".[gpt2]")'


class HubError(RuntimeError):
    """Files could not be downloaded: offline and not cached, a failed download, no huggingface_hub.
    The loaders re-raise it as their own error class; its message is one line that says what to do."""


def repo_id(name: str) -> str:
    """The Hub repository of a name: "gpt2" -> "openai-community/gpt2"; a full repository id as it is."""
    return GPT2_REPOS.get(name, name)


def download(name: str, filenames: Sequence[str]) -> list[Path]:
    """The local paths of `filenames` from the Hub repository of `name`, downloaded once, then cached.

    Offline with nothing cached (or any other failure): HubError, one line
    that says what to do, including passing a local folder instead.
    """
    files = " and ".join(filenames)
    try:
        import huggingface_hub as hub
    except ImportError:
        raise HubError(f"downloading {name} needs huggingface_hub: {INSTALL_HINT}, "
                       f"or pass a local folder holding {files}") from None
    try:
        from huggingface_hub.errors import LocalEntryNotFoundError
    except ImportError:  # huggingface_hub 0.23 (our lowest) has it only in utils
        from huggingface_hub.utils import LocalEntryNotFoundError

    repo = repo_id(name)
    try:
        try:
            return [Path(hub.hf_hub_download(repo, f)) for f in filenames]
        except LocalEntryNotFoundError:
            if repo == name:
                raise
            # Offline: transformers may have cached it earlier under the old bare name.
            return [Path(hub.hf_hub_download(name, f, local_files_only=True)) for f in filenames]
    except LocalEntryNotFoundError:
        raise HubError(
            f"cannot download {name}: no connection to huggingface.co (or HF_HUB_OFFLINE is set) and it is "
            f"not cached; connect to the internet and retry (the files are then cached), or download "
            f"{repo}'s {files} elsewhere and pass their folder"
        ) from None
    except Exception as e:  # HTTP errors, timeouts (not all are OSErrors), an invalid repository id, a full disk
        first_line = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise HubError(
            f"could not download {repo}: {first_line}; connect to the internet and retry, "
            f"or pass a local folder holding {files}"
        ) from None


def download_folder(name: str, files: Sequence[str] = MODEL_FILES, optional: Sequence[str] = TOKENIZER_FILES) -> Path:
    """The local folder (Hugging Face's cache) holding `files` of a repository, and those of `optional` it has.

    Every file of one repository lands in the same snapshot folder, so the loaders of a
    local folder read it as they read any other: one code path for both.
    """
    paths = download(name, files)
    for filename in optional:
        try:
            download(name, [filename])
        except HubError:  # not in this repository (or offline and not cached): the loaders say what is missing
            pass
    return paths[0].parent
