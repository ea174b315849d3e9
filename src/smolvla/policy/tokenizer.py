"""Task-string tokenisation: a thin wrapper over `tokenizers.Tokenizer` loaded from a local tokenizer.json.

LeRobot's SmolVLA appends "\\n" to each task, tokenises it with the backbone's tokenizer (special tokens
as the tokenizer.json post-processor adds them) and right-pads. We pad to the fixed budget
(`max_lang_tokens`, 48) so shapes are static; padded positions are masked out of attention, so the padding
length does not change the model's output. A task longer than the budget is an error unless the config
asks for truncation.

`build_byte_tokenizer()` makes a small byte-level tokenizer locally (257 ids, one token per byte): the
tokenizer of tests, of the committed demo policy and of checkpoints trained before scratch runs switched to
a subword vocabulary (`smolvla.policy.subword`). Both kinds are plain tokenizer.json files, so a checkpoint
loads whichever it was saved with.
"""

from __future__ import annotations

from pathlib import Path

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from tokenizers import decoders as tk_decoders

# Tried in order to find the padding id when tokenizer.json defines no padding.
_PAD_CANDIDATES = ("<pad>", "<|im_end|>", "<|endoftext|>", "</s>")
BYTE_PAD_TOKEN = "<pad>"


class TaskTokenizer:
    """Encode a batch of task strings into fixed-length token ids and masks.

    tokenizer: a `tokenizers.Tokenizer`; max_length: token budget L; truncate: cut over-long tasks instead
    of raising.
    """

    def __init__(self, tokenizer: Tokenizer, max_length: int, *, truncate: bool = False) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.truncate = truncate
        self.pad_id = _find_pad_id(tokenizer)

    @classmethod
    def from_file(cls, path: str | Path, max_length: int, *, truncate: bool = False) -> TaskTokenizer:
        """Load tokenizer.json (a file, or a directory holding one). Never downloads anything."""
        path = Path(path)
        if path.is_dir():
            path = path / "tokenizer.json"
        if not path.is_file():
            raise FileNotFoundError(f"tokenizer file not found: {path}")
        try:
            tok = Tokenizer.from_file(str(path))
        except Exception as e:  # tokenizers raises a bare Exception on malformed JSON
            raise ValueError(f"cannot parse tokenizer file {path}: {e}") from e
        return cls(tok, max_length, truncate=truncate)

    @property
    def vocab_size(self) -> int:
        return self.tokenizer.get_vocab_size(with_added_tokens=True)

    def to_json(self) -> str:
        return self.tokenizer.to_str()

    def _encode(self, tasks: list[str]) -> list[list[int]]:
        if isinstance(tasks, str) or not all(isinstance(t, str) for t in tasks):
            raise ValueError(f"tasks must be a list of str, got {type(tasks).__name__}: {tasks!r:.100}")
        texts = [t if t.endswith("\n") else t + "\n" for t in tasks]
        return [enc.ids for enc in self.tokenizer.encode_batch(texts)]

    def lengths(self, tasks: list[str]) -> list[int]:
        """Tokens each task takes before padding or truncation (trailing newline and special tokens included)."""
        return [len(row) for row in self._encode(tasks)]

    def __call__(self, tasks: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        """tasks: B strings -> (int64[B, L] token ids, bool[B, L] mask, True = real token)."""
        encodings = self._encode(tasks)
        ids = torch.full((len(tasks), self.max_length), self.pad_id, dtype=torch.int64)
        mask = torch.zeros((len(tasks), self.max_length), dtype=torch.bool)
        for i, row in enumerate(encodings):
            if len(row) > self.max_length:
                if not self.truncate:
                    # The budget is part of the trained policy (`smolvla train --max-task-tokens`).
                    raise ValueError(
                        f"task {i} is {len(row)} tokens, more than the budget of {self.max_length} "
                        f"(task: {tasks[i]!r:.80}); shorten the task or use a policy trained with a larger budget"
                    )
                row = row[: self.max_length]
            ids[i, : len(row)] = torch.tensor(row, dtype=torch.int64)
            mask[i, : len(row)] = True
        return ids, mask


def _find_pad_id(tokenizer: Tokenizer) -> int:
    if tokenizer.padding is not None:
        return int(tokenizer.padding["pad_id"])
    for token in _PAD_CANDIDATES:
        idx = tokenizer.token_to_id(token)
        if idx is not None:
            return idx
    # Padded positions are masked out everywhere, so any valid id works; 0 always exists.
    return 0


def build_byte_tokenizer() -> Tokenizer:
    """A byte-level tokenizer built locally: ids 0..255 are bytes, 256 is "<pad>". No merges, no download."""
    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {ch: i for i, ch in enumerate(sorted(alphabet, key=_byte_of))}
    vocab[BYTE_PAD_TOKEN] = len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False)
    tok.decoder = tk_decoders.ByteLevel()
    tok.add_special_tokens([BYTE_PAD_TOKEN])
    return tok


def _byte_of(ch: str) -> int:
    # ByteLevel maps each byte to one printable unicode char; order the vocab by the byte value it stands for.
    return _BYTE_OF_CHAR[ch]


def _bytes_to_unicode() -> dict[int, str]:
    # The GPT-2 byte -> printable-char table that ByteLevel uses: printable bytes map to themselves, the rest
    # to code points from 256 upwards, in byte order.
    keep = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + list(range(ord("®"), 256))
    table, extra = {}, 0
    for b in range(256):
        if b in keep:
            table[b] = chr(b)
        else:
            table[b] = chr(256 + extra)
            extra += 1
    return table


_BYTE_OF_CHAR = {ch: b for b, ch in _bytes_to_unicode().items()}
