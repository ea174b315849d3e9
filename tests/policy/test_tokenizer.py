"""Task tokenisation: trailing newline, right padding to the budget, the too-long error, the subword vocabulary
trained from task strings."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from smolvla.envs.metaworld_tasks import INSTRUCTIONS
from smolvla.policy.subword import train_task_tokenizer
from smolvla.policy.tokenizer import BYTE_PAD_TOKEN, TaskTokenizer, build_byte_tokenizer


@pytest.fixture(scope="module")
def tok() -> TaskTokenizer:
    return TaskTokenizer(build_byte_tokenizer(), max_length=8)


def test_byte_tokenizer_ids_are_bytes() -> None:
    t = build_byte_tokenizer()
    assert t.get_vocab_size() == 257
    assert t.encode("Aé\n").ids == [65, 0xC3, 0xA9, 10]
    assert t.token_to_id(BYTE_PAD_TOKEN) == 256
    assert t.decode(t.encode("pick é").ids) == "pick é"


def test_encode_appends_newline_and_right_pads(tok: TaskTokenizer) -> None:
    ids, mask = tok(["ab", "abc\n"])
    assert ids.dtype == torch.int64 and mask.dtype == torch.bool and ids.shape == (2, 8)
    assert ids[0].tolist() == [97, 98, 10] + [256] * 5
    assert mask[0].tolist() == [True] * 3 + [False] * 5
    # A task already ending in a newline does not get a second one.
    assert ids[1, :4].tolist() == [97, 98, 99, 10] and int(mask[1].sum()) == 4


def test_too_long_task_is_an_error(tok: TaskTokenizer) -> None:
    with pytest.raises(ValueError, match="task 0 is 9 tokens, more than the budget of 8") as err:
        tok(["abcdefgh"])
    # No setting the user cannot reach is suggested (no flag sets truncate_task).
    assert "truncate" not in str(err.value) and "use a policy trained with a larger budget" in str(err.value)


def test_lengths_count_the_newline(tok: TaskTokenizer) -> None:
    assert tok.lengths(["ab", "abc\n", "abcdefghij"]) == [3, 4, 11]  # over the budget is still counted


def test_truncation_only_when_asked() -> None:
    tok = TaskTokenizer(build_byte_tokenizer(), max_length=4, truncate=True)
    ids, mask = tok(["abcdef"])
    assert ids[0].tolist() == [97, 98, 99, 100] and bool(mask.all())


def test_rejects_a_bare_string(tok: TaskTokenizer) -> None:
    with pytest.raises(ValueError, match="tasks must be a list of str"):
        tok("pick")


def test_file_round_trip(tmp_path, tok: TaskTokenizer) -> None:
    (tmp_path / "tokenizer.json").write_text(tok.to_json())
    again = TaskTokenizer.from_file(tmp_path, max_length=8)
    assert again.pad_id == 256
    assert torch.equal(again(["hello"])[0], tok(["hello"])[0])
    (tmp_path / "bad.json").write_text("{not json")
    with pytest.raises(ValueError, match="cannot parse tokenizer file"):
        TaskTokenizer.from_file(tmp_path / "bad.json", 8)
    with pytest.raises(FileNotFoundError, match="tokenizer file not found"):
        TaskTokenizer.from_file(tmp_path / "missing.json", 8)


@pytest.mark.parametrize("bos", [False, True])
def test_matches_the_transformers_call_lerobot_makes(bos: bool) -> None:
    """LeRobot appends "\\n" and calls the HF tokenizer with max_length, truncation=True, right padding
    ("longest"; padding length does not matter, pads are masked). Real tokens and masks must agree,
    including special tokens a tokenizer.json post-processor adds (here a BOS template)."""
    transformers = pytest.importorskip("transformers")
    from tokenizers import processors

    def make():
        t = build_byte_tokenizer()
        if bos:
            t.add_special_tokens(["<s>"])
            t.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 257)])
        return t

    hf = transformers.PreTrainedTokenizerFast(tokenizer_object=make(), pad_token=BYTE_PAD_TOKEN)
    tasks = ["pick up the cube", "open\n", "x" * 30]
    ids, mask = TaskTokenizer(make(), max_length=12, truncate=True)(tasks)
    texts = [t if t.endswith("\n") else t + "\n" for t in tasks]
    ref = hf(texts, max_length=12, truncation=True, padding="longest", padding_side="right", return_tensors="pt")
    ref_mask = ref["attention_mask"].bool()
    assert torch.equal(mask[:, : ref_mask.shape[1]], ref_mask) and not mask[:, ref_mask.shape[1] :].any()
    assert torch.equal(ids[mask], ref["input_ids"][ref_mask])
    assert (ids[0, 0].item() == 257) == bos


def test_subword_vocabulary_fits_every_meta_world_instruction() -> None:
    """One token per byte cannot hold Meta-World's instructions in a small budget (peg-insert-side is 51
    bytes); a BPE trained on them fits every MT50 instruction in well under 48 tokens."""
    tasks = list(INSTRUCTIONS.values())
    byte = TaskTokenizer(build_byte_tokenizer(), 48)
    assert max(byte.lengths(tasks)) == 64
    sub = TaskTokenizer(train_task_tokenizer(tasks, 512), 48)
    assert sub.vocab_size <= 512 and sub.pad_id == 0
    assert max(sub.lengths(tasks)) <= 20
    ids, mask = sub(tasks)  # no task over the budget
    assert ids.shape == (50, 48) and bool((ids[~mask] == 0).all())


def test_subword_vocabulary_still_encodes_unseen_text() -> None:
    t = train_task_tokenizer(["pick the cube", "place the cube"], 300)
    text = "Stack the ZEBRA on the 日本 cube\n"
    assert t.decode(t.encode(text).ids).strip() == text.strip()
    # Learned words are one token each; the unseen ones fall back to their bytes.
    tok = TaskTokenizer(t, 64)
    assert tok.lengths(["pick the cube"]) == [4]
    assert tok.lengths(["zebra"]) == [len(" zebra") + 1]


def test_subword_training_is_deterministic_and_order_free(tmp_path) -> None:
    tasks = list(INSTRUCTIONS.values())
    a = train_task_tokenizer(tasks, 400)
    b = train_task_tokenizer(reversed(tasks + tasks[:5]), 400)
    assert a.to_str() == b.to_str() and a.get_vocab_size() == 400
    # Saved and loaded as tokenizer.json (how checkpoints carry it), it encodes identically.
    (tmp_path / "tokenizer.json").write_text(a.to_str())
    loaded = TaskTokenizer.from_file(tmp_path, max_length=24)
    assert torch.equal(loaded(tasks)[0], TaskTokenizer(a, 24)(tasks)[0])


def test_subword_training_refuses_what_it_cannot_do() -> None:
    with pytest.raises(ValueError, match=r"vocab_size must be >= 257 \(256 bytes \+ <pad>\), got 100"):
        train_task_tokenizer(["pick"], 100)
    with pytest.raises(ValueError, match="no task strings to train a tokenizer on"):
        train_task_tokenizer([], 512)


def test_committed_demo_policy_keeps_its_byte_tokenizer() -> None:
    """Checkpoints trained before scratch runs learned a BPE carry the byte tokenizer in their tokenizer.json;
    they load it unchanged (the committed demo: one id per byte, budget 40)."""
    asset = Path(__file__).resolve().parents[2] / "assets" / "demo_policy"
    tasks = ["press the button down from above", "push the drawer shut"]
    saved, byte = TaskTokenizer.from_file(asset, 40), TaskTokenizer(build_byte_tokenizer(), 40)
    assert saved.vocab_size == 257 and saved.pad_id == 256
    assert all(torch.equal(a, b) for a, b in zip(saved(tasks), byte(tasks), strict=True))
