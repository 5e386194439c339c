"""Recipe: a new dataset is one parser function plus one ``register_dataset(DatasetSpec(...))`` call;
no agentkit file is touched.

The toy set asks whether a number is even; its file is written by the test, its parser lives here,
and a fake backend answers "even" to everything, so the accuracy the harness reports must be the
share of even rows -- computed from the file, not typed in.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError

from agentkit.backends.base import Backend, Choice, Generation, GenerationRequest
from agentkit.errors import ConfigError
from agentkit.eval import (
    DATASET_NAMES,
    DatasetError,
    DatasetSpec,
    Example,
    answer_kind,
    dataset_names,
    dataset_spec,
    evaluate,
    label_set,
    load_dataset,
    register_dataset,
    select_dataset,
    unregister_dataset,
)

TOY = "toy-parity"
NUMBERS = [4, 7, 10, 13, 22, 31, 8]


def parse_parity(rows: Iterator[tuple[int, dict[str, Any]]], src: str) -> Iterator[Example]:
    for line, row in rows:
        n = row["n"]  # a missing key is reported by the registry with the file and line
        if not isinstance(n, int):
            raise DatasetError(f"{src}:{line}: field 'n': expected an integer", path=src, line=line, field="n")
        yield Example(id=f"parity-{n}", fields={"question": f"Is {n} even or odd?", "tens": str(n // 10)},
                      label="even" if n % 2 == 0 else "odd")


def _write_rows(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def _toy_spec(data_dir: Path, **overrides: Any) -> DatasetSpec:
    fields: dict[str, Any] = {
        "name": TOY,
        "splits": {"test": "parity.jsonl"},
        "parser": parse_parity,
        "answer_kind": "label",
        "labels": frozenset({"even", "odd"}),
        "cluster_key": "tens",
        "description": "toy: is a number even or odd",
        "data_dir": data_dir,
    }
    return DatasetSpec(**{**fields, **overrides})


@pytest.fixture
def toy(tmp_path: Path) -> Iterator[DatasetSpec]:
    _write_rows(tmp_path / "parity.jsonl", [{"n": n} for n in NUMBERS])
    spec = register_dataset(_toy_spec(tmp_path))
    try:
        yield spec
    finally:
        unregister_dataset(TOY)


class SaysEven:
    """A backend that answers every request with {"answer": "even"} and keeps the requests it saw."""

    provider = "fake"
    model = "says-even-1"

    def __init__(self) -> None:
        self.requests: list[GenerationRequest] = []

    async def generate(self, request: GenerationRequest) -> Generation:
        self.requests.append(request)
        text = json.dumps({"answer": "even"})
        return Generation(choices=[Choice(text=text) for _ in range(request.n)], model=self.model)


def test_a_registered_toy_dataset_loads_and_evaluates(toy: DatasetSpec, tmp_path: Path) -> None:
    assert TOY in dataset_names() and TOY not in DATASET_NAMES
    assert dataset_spec("Toy-Parity") is toy
    assert (answer_kind(TOY), label_set(TOY)) == ("label", {"even", "odd"})

    examples = load_dataset(TOY)
    assert [e.id for e in examples] == [f"parity-{n}" for n in NUMBERS]
    assert [e.label for e in load_dataset(TOY, limit=2)] == ["even", "odd"]

    data = select_dataset(TOY, limit=5)
    assert (data.name, data.answer_kind, data.labels) == (TOY, "label", ["even", "odd"])
    assert data.cluster_key == "tens"
    assert data.clusters() == [str(n // 10) for n in NUMBERS[:5]]

    backend = SaysEven()
    assert isinstance(backend, Backend)
    outcome = evaluate("direct", data, backend, tmp_path / "run")

    expected = sum(e.label == "even" for e in data.examples) / len(data.examples)
    assert 0 < expected < 1  # the fake is right on some rows and wrong on others
    assert outcome.complete and outcome.summary.n == 5
    assert outcome.summary.dataset == TOY
    assert outcome.summary.accuracy == pytest.approx(expected)
    # the spec's labels reached the model as the answer's allowed values
    schema = backend.requests[0].constraint.value  # type: ignore[union-attr]
    assert json.dumps(sorted(data.labels or [])) in json.dumps(schema, sort_keys=True)
    lines = (tmp_path / "run" / "results.jsonl").read_text(encoding="utf-8").splitlines()
    assert {json.loads(line)["prediction"] for line in lines} == {"even"}


def test_registration_rules(toy: DatasetSpec, tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="already registered"):
        register_dataset(_toy_spec(tmp_path))
    again = register_dataset(_toy_spec(tmp_path, description="toy, replaced"), replace=True)
    assert dataset_spec(TOY) is again
    with pytest.raises(ConfigError, match="built in"):
        register_dataset(_toy_spec(tmp_path, name="gsm8k"), replace=True)
    with pytest.raises(ConfigError, match="built in"):
        unregister_dataset("folio")
    with pytest.raises(ConfigError, match="not registered"):
        unregister_dataset("toy-other")
    with pytest.raises(ConfigError, match="DatasetSpec"):
        register_dataset({"name": "toy-dict"})  # type: ignore[arg-type]


def test_spec_validation() -> None:
    one = _toy_spec(Path("/nowhere"))
    assert one.default_split == "test"  # the only split is the default
    with pytest.raises(ValidationError, match="default_split"):
        _toy_spec(Path("/x"), splits={"a": "a.jsonl", "b": "b.jsonl"})
    with pytest.raises(ValidationError, match="not one of the splits"):
        _toy_spec(Path("/x"), default_split="dev")
    with pytest.raises(ValidationError, match="name"):
        _toy_spec(Path("/x"), name="Toy Parity")
    with pytest.raises(ValidationError, match="answer_kind"):
        _toy_spec(Path("/x"), answer_kind="vibes")
    with pytest.raises(ValidationError, match="labels"):
        _toy_spec(Path("/x"), labels=frozenset())
    with pytest.raises(ValidationError, match="one line"):
        _toy_spec(Path("/x"), description="two\nlines")
    with pytest.raises(ValidationError, match="parser"):
        _toy_spec(Path("/x"), parser="parse_parity")


def test_absolute_paths_splits_and_data_dir(toy: DatasetSpec, tmp_path: Path) -> None:
    other = _write_rows(tmp_path / "elsewhere.jsonl", [{"n": 2}, {"n": 3}])
    register_dataset(_toy_spec(tmp_path, splits={"test": "parity.jsonl", "extra": other},
                               default_split="test"), replace=True)
    assert len(load_dataset(TOY)) == len(NUMBERS)
    assert [e.id for e in load_dataset(TOY, split="extra")] == ["parity-2", "parity-3"]
    copy = tmp_path / "copy"
    copy.mkdir()
    _write_rows(copy / "parity.jsonl", [{"n": 6}])
    assert [e.id for e in load_dataset(TOY, data_dir=copy)] == ["parity-6"]  # the call's root wins
    with pytest.raises(DatasetError, match="no split 'dev'"):
        load_dataset(TOY, split="dev")
    with pytest.raises(DatasetError, match=r"not found; fix the spec's splits or data_dir"):
        load_dataset(TOY, data_dir=tmp_path / "missing")


def test_a_registered_parsers_slips_name_the_file_and_line(toy: DatasetSpec, tmp_path: Path) -> None:
    path = _write_rows(tmp_path / "parity.jsonl", [{"n": 2}, {"n": 3}, {"m": 4}])
    slip = re.escape(f"{path}:3: the 'toy-parity' parser failed (KeyError: 'n')")
    with pytest.raises(DatasetError, match=slip) as info:
        load_dataset(TOY)
    assert info.value.line == 3 and isinstance(info.value.__cause__, KeyError)
    _write_rows(path, [{"n": 2}, {"n": "three"}])
    with pytest.raises(DatasetError, match=re.escape(f"{path}:") + r"2: field 'n': expected an integer"):
        load_dataset(TOY)

    def no_cluster(rows: Iterator[tuple[int, dict[str, Any]]], src: str) -> Iterator[Example]:
        for line, _ in rows:
            yield Example(id=str(line), fields={"question": "q"}, label="even")

    register_dataset(_toy_spec(tmp_path, parser=no_cluster), replace=True)
    _write_rows(path, [{"n": 2}])
    no_key = re.escape(f"{path}:1: example '1' has no 'tens' field, the spec's cluster_key")
    with pytest.raises(DatasetError, match=no_key):
        load_dataset(TOY)

    def empty_id(rows: Iterator[tuple[int, dict[str, Any]]], src: str) -> Iterator[Example]:
        for _ in rows:
            yield Example(id="", fields={"tens": "0"}, label="even")

    register_dataset(_toy_spec(tmp_path, parser=empty_id), replace=True)
    with pytest.raises(DatasetError, match=re.escape(f"{path}:1: the 'toy-parity' parser failed (field 'id': ")):
        load_dataset(TOY)

    def dicts(rows: Iterator[tuple[int, dict[str, Any]]], src: str) -> Iterator[Any]:
        yield from (record for _, record in rows)

    register_dataset(_toy_spec(tmp_path, parser=dicts), replace=True)
    with pytest.raises(DatasetError, match=re.escape(f"{path}:1: the 'toy-parity' parser yielded a dict")):
        load_dataset(TOY)


# --------------------------------------------------------------------------- the built-in specs


@pytest.mark.parametrize("name", DATASET_NAMES)
def test_builtin_specs_drive_the_lookups(name: str) -> None:
    spec = dataset_spec(name)
    assert spec.name == name
    assert label_set(name) == spec.labels and answer_kind(name) == spec.answer_kind
    assert spec.description.strip() and "\n" not in spec.description
    data = select_dataset(name, limit=8)
    assert data.cluster_key == spec.cluster_key
    assert (data.clusters() is None) == (spec.cluster_key is None)


def test_judging_set_clusters_its_candidates_by_question() -> None:
    spec = dataset_spec("gsm8k-judge")
    assert spec.cluster_key is not None
    examples = load_dataset("gsm8k-judge")
    sizes = Counter(e.fields[spec.cluster_key] for e in examples)
    # one cluster per GSM8K test question, four candidate solutions in each
    assert len(sizes) == len(load_dataset("gsm8k")) == 1319
    assert set(sizes.values()) == {4}
    texts: dict[object, set[str]] = {}
    for e in examples:
        texts.setdefault(e.fields[spec.cluster_key], set()).add(e.fields["question"])
    assert all(len(t) == 1 for t in texts.values())  # a cluster is exactly one question
    assert len(set().union(*texts.values())) == len(sizes)  # and no two clusters share a question
    for e in examples:
        assert e.id.startswith(f"gsm8k-judge-{e.fields[spec.cluster_key]:04d}-")

    data = select_dataset("gsm8k-judge", limit=40)
    clusters = data.clusters()
    assert clusters is not None and len(clusters) == 40
    assert Counter(clusters) == {str(i): 4 for i in range(10)}
    assert clusters == sorted(clusters, key=int)  # a question's candidates are adjacent


def test_files_have_no_cluster_key(tmp_path: Path) -> None:
    path = _write_rows(tmp_path / "mine.jsonl", [{"id": "a", "question": "q", "label": "1"}])
    data = select_dataset(path)
    assert data.cluster_key is None and data.clusters() is None
