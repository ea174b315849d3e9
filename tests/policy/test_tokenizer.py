"""Task tokenisation: trailing newline, right padding to the budget, the too-long error."""

from __future__ import annotations

import pytest
import torch

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
    with pytest.raises(ValueError, match="task 0 is 9 tokens, more than the budget of 8"):
        tok(["abcdefgh"])


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
