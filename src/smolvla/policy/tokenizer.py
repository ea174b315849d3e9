"""Task-string tokenisation for the torch policy: `smolvla.task_tokens.ArrayTaskTokenizer` (LeRobot's
"\\n"-appended, right-padded encoding, the one implementation shared with the torch-free runtime) returning
torch tensors.

`build_byte_tokenizer()` makes a small byte-level tokenizer locally (257 ids, one token per byte): the
tokenizer of tests, of the committed demo policy and of checkpoints trained before scratch runs switched to
a subword vocabulary (`smolvla.policy.subword`). Both kinds are plain tokenizer.json files, so a checkpoint
loads whichever it was saved with.
"""

from __future__ import annotations

import torch
from tokenizers import Tokenizer, models, pre_tokenizers
from tokenizers import decoders as tk_decoders

from smolvla.task_tokens import ArrayTaskTokenizer

BYTE_PAD_TOKEN = "<pad>"


class TaskTokenizer(ArrayTaskTokenizer):
    """`ArrayTaskTokenizer` whose call returns torch tensors: (int64[B, L] token ids, bool[B, L] mask)."""

    def __call__(self, tasks: list[str]) -> tuple[torch.Tensor, torch.Tensor]:
        ids, mask = self.encode_arrays(tasks)
        return torch.from_numpy(ids), torch.from_numpy(mask)


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
