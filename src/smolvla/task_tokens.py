"""Task strings -> fixed-length token ids and masks, in numpy: the one implementation behind the torch policy's
`smolvla.policy.tokenizer.TaskTokenizer` and the torch-free ONNX runtime (`smolvla.deploy`).

LeRobot's SmolVLA appends "\\n" to each task, tokenises it with the backbone's tokenizer (special tokens as the
tokenizer.json post-processor adds them) and right-pads. We pad to the fixed budget (`max_lang_tokens`) so
shapes are static; padded positions are masked out of attention. A task longer than the budget is an error
unless the config asks for truncation.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tokenizers import Tokenizer

# Tried in order to find the padding id when tokenizer.json defines no padding.
_PAD_CANDIDATES = ("<pad>", "<|im_end|>", "<|endoftext|>", "</s>")


class ArrayTaskTokenizer:
    """Encode a batch of task strings into fixed-length token ids and masks (numpy arrays).

    tokenizer: a `tokenizers.Tokenizer`; max_length: token budget L; truncate: cut over-long tasks instead
    of raising.
    """

    def __init__(self, tokenizer: Tokenizer, max_length: int, *, truncate: bool = False) -> None:
        self.tokenizer = tokenizer
        self.max_length = max_length
        self.truncate = truncate
        self.pad_id = _find_pad_id(tokenizer)

    @classmethod
    def from_file(cls, path: str | Path, max_length: int, *, truncate: bool = False):
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

    def encode_arrays(self, tasks: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """tasks: B strings -> (int64[B, L] token ids, bool[B, L] mask, True = real token)."""
        encodings = self._encode(tasks)
        ids = np.full((len(tasks), self.max_length), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(tasks), self.max_length), dtype=bool)
        for i, row in enumerate(encodings):
            if len(row) > self.max_length:
                if not self.truncate:
                    # The budget is part of the trained policy (`smolvla train --max-task-tokens`).
                    raise ValueError(
                        f"task {i} is {len(row)} tokens, more than the budget of {self.max_length} "
                        f"(task: {tasks[i]!r:.80}); shorten the task or use a policy trained with a larger budget"
                    )
                row = row[: self.max_length]
            ids[i, : len(row)] = row
            mask[i, : len(row)] = True
        return ids, mask

    __call__ = encode_arrays


def _find_pad_id(tokenizer: Tokenizer) -> int:
    if tokenizer.padding is not None:
        return int(tokenizer.padding["pad_id"])
    for token in _PAD_CANDIDATES:
        idx = tokenizer.token_to_id(token)
        if idx is not None:
            return idx
    # Padded positions are masked out everywhere, so any valid id works; 0 always exists.
    return 0
