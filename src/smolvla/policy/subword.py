"""A small subword vocabulary trained offline on a dataset's task strings (byte-level BPE).

Policies trained from scratch have no pretrained tokenizer. One token per byte (`build_byte_tokenizer`)
makes Meta-World instructions 30-64 tokens long; a byte-level BPE whose merges are learned from the
training tasks makes each known word one token (MT50: at most 17 tokens, vocabulary 495), while its
alphabet of all 256 bytes still encodes any text, an unseen word costing one token per byte.

Training is deterministic (the same set of tasks gives the same tokenizer.json, whatever their order)
and needs nothing but the `tokenizers` library. The result is saved inside the checkpoint as
tokenizer.json, from which every later load (serve, eval, finetune) reads it back.
"""

from __future__ import annotations

from collections.abc import Iterable

from tokenizers import Tokenizer, models, pre_tokenizers, trainers
from tokenizers import decoders as tk_decoders

from smolvla.policy.tokenizer import BYTE_PAD_TOKEN

# 256 byte symbols + "<pad>": a vocabulary below this has room for no merge at all.
MIN_VOCAB = 257


def train_task_tokenizer(tasks: Iterable[str], vocab_size: int) -> Tokenizer:
    """A byte-level BPE with at most `vocab_size` ids ("<pad>" is id 0, then the 256 bytes, then merges).

    tasks: the task strings to learn merges from (each trained as the model sees it, with its trailing "\\n").
    """
    if vocab_size < MIN_VOCAB:
        raise ValueError(f"vocab_size must be >= {MIN_VOCAB} (256 bytes + <pad>), got {vocab_size}")
    texts = sorted({t if t.endswith("\n") else t + "\n" for t in tasks})
    if not texts:
        raise ValueError("no task strings to train a tokenizer on")
    tok = Tokenizer(models.BPE())
    # A leading space makes a task's first word the same token as that word inside a sentence.
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=True, use_regex=True)
    tok.decoder = tk_decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        min_frequency=1,
        special_tokens=[BYTE_PAD_TOKEN],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return tok
