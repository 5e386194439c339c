"""majority-label: a constant prediction with no model call, counted on a split the run is not scored on
(train, else dev), or on the scored rows themselves -- an oracle, and marked so."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from agentkit.cli._eval_baselines import majority_label_knobs, plan
from agentkit.errors import ConfigError
from agentkit.eval import DatasetSpec, register_dataset, unregister_dataset
from agentkit.eval.runner import evaluate, select_dataset
from agentkit.graphs import baselines, get_pattern
from agentkit.vocab import Example


def _parse(rows, src):
    for _, row in rows:
        yield Example(id=row["id"], fields={"question": row["q"]}, label=row["label"])


def _write(path: Path, labels: list[str]) -> Path:
    path.write_text("".join(json.dumps({"id": f"{path.stem}-{i}", "q": f"q{i}", "label": lab}) + "\n"
                            for i, lab in enumerate(labels)))
    return path


@pytest.fixture
def toy_sets(tmp_path: Path) -> Iterator[None]:
    """'toy-split': train mostly "no", test mostly "yes"; 'toy-test': a test split only."""
    train = _write(tmp_path / "train.jsonl", ["no", "no", "no", "yes"])
    test = _write(tmp_path / "test.jsonl", ["yes", "yes", "no"])
    common = {"parser": _parse, "answer_kind": "label", "labels": frozenset({"yes", "no"}), "description": "toy"}
    register_dataset(DatasetSpec(name="toy-split", splits={"test": str(test), "train": str(train)},
                                 default_split="test", **common))
    register_dataset(DatasetSpec(name="toy-test", splits={"test": str(test)}, **common))
    yield
    unregister_dataset("toy-split")
    unregister_dataset("toy-test")


class NoModel:
    provider, model = "none", "none"

    async def generate(self, request):
        raise AssertionError("majority-label must not call a model")


def test_the_label_comes_from_the_train_split_when_there_is_one(toy_sets) -> None:
    assert majority_label_knobs(select_dataset("toy-split")) == {"label": "no", "source": "train"}


def test_without_another_split_the_scored_rows_give_the_label_and_it_is_an_oracle(toy_sets) -> None:
    assert majority_label_knobs(select_dataset("toy-test")) == {"label": "yes", "source": "oracle"}
    assert majority_label_knobs(select_dataset("toy-test", limit=1)) == {"label": "yes", "source": "oracle"}


def test_folio_counts_its_train_split() -> None:
    knobs = majority_label_knobs(select_dataset("folio", limit=5))
    assert knobs["source"] == "train" and knobs["label"] in {"True", "False", "Uncertain"}


def test_folio_clean_counts_folios_train_split_not_its_own_rows() -> None:
    """folio-clean is a filtered FOLIO validation; its own first 50 rows' majority ("Uncertain") would be
    an oracle, while FOLIO train's (388 True, 330 Uncertain, 286 False) is not."""
    assert majority_label_knobs(select_dataset("folio-clean", limit=50)) == {"label": "True", "source": "train"}


def test_ties_go_to_the_first_label_in_sorted_order() -> None:
    assert baselines.majority_label(["b", "a", "b", "a", "c"]) == "a"
    assert baselines.majority_label(["b", "b", "a"]) == "b"
    with pytest.raises(ConfigError, match="no labelled rows"):
        baselines.majority_label([])


def test_it_predicts_the_label_for_every_row_without_a_model_call(toy_sets, tmp_path: Path) -> None:
    data = select_dataset("toy-split")
    outcome = evaluate("majority-label", data, NoModel(), tmp_path / "m", knobs={"label": "no", "source": "train"})
    rows = [json.loads(line) for line in (tmp_path / "m" / "results.jsonl").read_text().splitlines()]
    assert [r["prediction"] for r in rows] == ["no"] * 3 and sum(r["correct"] for r in rows) == 1
    assert all(r["calls"] == 0 and r["usage"]["output_tokens"] == 0 for r in rows)
    assert outcome.summary.cost == 0.0 and outcome.summary.accuracy == pytest.approx(1 / 3)
    manifest = json.loads((tmp_path / "m" / "run.json").read_text())
    assert manifest["knobs"]["source"] == "train" and manifest["knobs"]["label"] == "no"


def test_a_label_outside_the_set_or_no_label_is_refused() -> None:
    pattern = get_pattern("majority-label")
    with pytest.raises(ConfigError, match="not one of the dataset's labels"):
        pattern.graph(None, label="maybe", labels=["yes", "no"])
    with pytest.raises(ConfigError, match="knob 'label' is not set"):
        pattern.graph(None)


def test_baselines_include_it_on_labelled_sets_only(toy_sets, tmp_path: Path) -> None:
    mccot = get_pattern("mccot")
    runs = plan(mccot, select_dataset("toy-test"), tmp_path, {"k": 3})
    assert [r.label for r in runs] == ["direct", "cot", "sc", "majority-label (oracle)"]
    majority = runs[-1]
    assert majority.out_dir == tmp_path / "baseline-majority-label"
    assert majority.knobs == {"label": "yes", "source": "oracle", "labels": ["no", "yes"]}
    assert runs[2].knobs is None  # sc waits for the pattern's samples per example
    runs = plan(mccot, select_dataset("gsm8k", limit=2), tmp_path, {"k": 3})
    assert [r.label for r in runs] == ["direct", "cot", "sc"]
