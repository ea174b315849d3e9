"""configio: the one typed reader/checker of config dataclasses (key paths, types, Literal, required keys)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar, Literal

import pytest

from smolvla import configio


@dataclass(frozen=True)
class Leaf:
    name: str
    weight: float = 1.0

    def __post_init__(self) -> None:
        configio.check_fields(self)
        if self.weight <= 0:
            raise ValueError(f"Leaf.weight must be > 0, got {self.weight}")


@dataclass(frozen=True)
class Tree:
    mode: Literal["fast", "slow"] = "fast"
    limit: int | None = None
    pair: tuple[float, float] = (0.5, 0.25)
    leaves: tuple[Leaf, ...] = ()
    tags: list[str] = field(default_factory=list)
    on: bool = True

    RETIRED_KEYS: ClassVar[tuple[str, ...]] = ("old",)

    def __post_init__(self) -> None:
        configio.check_fields(self)


@dataclass(frozen=True)
class Strict:
    a: int = 1
    b: Leaf = field(default_factory=lambda: Leaf("x"))

    REQUIRED_KEYS: ClassVar[str] = configio.ALL_FIELDS

    def __post_init__(self) -> None:
        configio.check_fields(self)


def test_round_trip_builds_nested_dataclasses_and_tuples() -> None:
    tree = Tree(mode="slow", limit=3, pair=(0.1, 2), leaves=(Leaf("a"), Leaf("b", 2)), tags=["t"], on=False)
    data = configio.to_dict(tree)
    assert data["pair"] == [0.1, 2.0] and data["leaves"][1] == {"name": "b", "weight": 2.0}
    again = configio.from_dict(Tree, data)
    assert again == tree and isinstance(again.leaves, tuple) and isinstance(again.pair[1], float)


def test_python_construction_is_checked_and_normalised() -> None:
    tree = Tree(pair=[1, 2], leaves=[Leaf("a")])  # lists for tuple fields, ints for floats: stored as declared
    assert tree.pair == (1.0, 2.0) and type(tree.pair[0]) is float and tree.leaves == (Leaf("a"),)
    assert tree == Tree(pair=(1.0, 2.0), leaves=(Leaf("a"),))
    with pytest.raises(
        ValueError, match=r"^Tree.mode: expected one of \['fast', 'slow'\], got 'fsat' \(str\); did you mean 'fast'\?$"
    ):
        Tree(mode="fsat")
    with pytest.raises(ValueError, match=r"^Tree.leaves\[0\]: expected Leaf, got \{'name': 'a'\} \(dict\)$"):
        Tree(leaves=({"name": "a"},))


@pytest.mark.parametrize(
    ("data", "match"),
    [
        ({"mode": 1}, r"^f.json: mode: expected one of \['fast', 'slow'\], got 1 \(int\)$"),
        ({"limit": "3"}, r"^f.json: limit: expected int or null, got '3' \(str\)$"),
        ({"limit": True}, r"limit: expected int or null, got True \(bool\)"),  # a bool is not a number
        ({"limit": 3.0}, r"limit: expected int or null, got 3.0 \(float\)"),
        ({"pair": [1.0]}, r"pair: expected 2 items, got 1: \[1.0\] \(list\)"),
        ({"pair": "ab"}, r"pair: expected a list of 2 items \(float, float\), got 'ab' \(str\)"),
        ({"pair": [1.0, float("nan")]}, r"pair\[1\]: expected a finite number, got nan"),
        ({"pair": [1.0, float("inf")]}, r"pair\[1\]: expected a finite number, got inf"),
        (
            {"leaves": [{"name": "a"}, {"nme": "b"}]},
            r"unknown Leaf keys \['nme'\] in 'leaves\[1\]' \(did you mean 'nme' -> 'name'\?\)",
        ),
        ({"leaves": [{"weight": 2.0}]}, r"^f.json: missing Leaf keys \['name'\] in 'leaves\[0\]'$"),
        ({"leaves": [{"name": "a", "weight": "2"}]}, r"leaves\[0\].weight: expected float, got '2' \(str\)"),
        ({"leaves": [{"name": "a", "weight": -1}]}, r"^f.json: Leaf.weight must be > 0, got -1.0$"),
        ({"leaves": [["a"]]}, r"leaves\[0\]: expected a JSON object for Leaf, got \['a'\] \(list\)"),
        ({"tags": ["a", None]}, r"tags\[1\]: expected str, got None \(NoneType\)"),
        ({"on": 1}, r"on: expected bool, got 1 \(int\)"),
        ({"mode": "x" * 500}, r"got 'xxxxx+\.\.\. \(str\)$"),  # a huge value is not echoed in full
        ([1, 2], r"^f.json: top level: expected a JSON object for Tree, got \[1, 2\] \(list\)$"),
        ({"colour": 1, "mdoe": "fast"}, r"unknown Tree keys \['colour', 'mdoe'\] \(did you mean 'mdoe' -> 'mode'\?\)"),
    ],
)
def test_from_dict_errors_name_the_key_path_type_and_value(data, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        configio.from_dict(Tree, data, source="f.json")


def test_required_and_retired_keys() -> None:
    assert configio.from_dict(Tree, {"old": 1, "limit": None}) == Tree()  # written by an older version: dropped
    with pytest.raises(ValueError, match=r"^missing Strict keys \['b'\]$"):
        configio.from_dict(Strict, {"a": 1})
    # REQUIRED_KEYS is per class: Leaf declares none, so its defaults still apply inside Strict.
    assert configio.from_dict(Strict, {"a": 1, "b": {"name": "x"}}) == Strict(1, Leaf("x"))
    assert configio.from_dict(Strict, {"a": 2, "b": {"name": "y", "weight": 1}}) == Strict(2, Leaf("y"))


def test_an_unsupported_annotation_is_a_programming_error() -> None:
    @dataclass(frozen=True)
    class Odd:
        d: frozenset[int] = frozenset()

    with pytest.raises(TypeError, match=r"configio cannot check d of type frozenset\[int\]"):
        configio.from_dict(Odd, {"d": []})


def test_string_keyed_tables() -> None:
    @dataclass(frozen=True)
    class Names:
        table: dict[str, str | None] = field(default_factory=dict)

    assert configio.from_dict(Names, {"table": {"laptop": "image1", "phone": None}}).table == {
        "laptop": "image1",
        "phone": None,
    }
    assert configio.to_dict(Names({"a": None})) == {"table": {"a": None}}
    with pytest.raises(ValueError, match=r"table.phone: expected str or null, got 3 \(int\)"):
        configio.from_dict(Names, {"table": {"phone": 3}})
    with pytest.raises(ValueError, match=r"table: expected a JSON object of str or null, got \['a'\]"):
        configio.from_dict(Names, {"table": ["a"]})
