"""Dataset loaders: the shipped sets load completely and correctly; bad files fail loudly and precisely."""

from __future__ import annotations

import json
import random
import re
from collections import Counter
from pathlib import Path

import pytest

from agentkit.errors import ConfigError
from agentkit.eval import (
    DATASET_NAMES,
    DatasetError,
    Example,
    dataset_names,
    dev_test_split,
    label_set,
    load_dataset,
)

TFU = {"True", "False", "Uncertain"}

EXPECTED = {
    # name: (rows, allowed labels or a regex every label must match)
    "folio": (204, TFU),
    "folio-clean": (182, TFU),
    "proofwriter": (600, TFU),
    "proofwriter-360": (360, TFU),
    "prontoqa": (500, {"True", "False"}),
    "logicaldeduction": (300, set("ABCDEFG")),
    "gsm8k": (1319, re.compile(r"^-?\d+(\.\d+)?$")),
    "gsm8k-easy": (440, re.compile(r"^-?\d+(\.\d+)?$")),
    "gsm8k-judge": (5276, {"correct", "incorrect"}),
    "math500": (500, re.compile(r"\S")),
}

_cache: dict[str, list[Example]] = {}


def _load(name: str) -> list[Example]:
    if name not in _cache:
        _cache[name] = load_dataset(name)
    return _cache[name]


def test_every_named_dataset_is_covered() -> None:
    assert set(DATASET_NAMES) == set(EXPECTED)
    assert dataset_names()[: len(DATASET_NAMES)] == DATASET_NAMES  # the built-ins first, in their order


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_named_dataset_rows_labels_and_ids(name: str) -> None:
    rows, allowed = EXPECTED[name]
    examples = _load(name)
    assert len(examples) == rows
    ids = [e.id for e in examples]
    assert len(set(ids)) == len(ids)
    for e in examples:
        if isinstance(allowed, set):
            assert e.label in allowed, (e.id, e.label)
        else:
            assert allowed.search(e.label), (e.id, e.label)
        assert isinstance(e.fields["question"], str) and e.fields["question"].strip()
    if isinstance(allowed, set):
        assert label_set(name) == allowed or name == "logicaldeduction"


def test_label_distributions_match_the_sources() -> None:
    assert Counter(e.label for e in _load("folio")) == {"True": 72, "Uncertain": 69, "False": 63}
    assert Counter(e.label for e in _load("proofwriter")) == {"True": 200, "False": 200, "Uncertain": 200}
    assert Counter(e.label for e in _load("prontoqa")) == {"True": 258, "False": 242}
    # 286 + 515 + 458 + 742 solutions are marked correct in the four columns
    assert Counter(e.label for e in _load("gsm8k-judge"))["correct"] == 2001


def test_folio_fields() -> None:
    first = _load("folio")[0]
    assert first.id == "folio-val-0000"
    assert first.label == "Uncertain"
    assert first.fields["conclusion_fol"] == "Engaged(bonnie)"
    assert first.fields["premises_fol"][0] == "∀x (TalentShows(x) → Engaged(x))"
    assert len(first.fields["premises"]) == 6
    assert first.fields["conclusion"] in first.fields["question"]
    assert _load("folio")[7].id == "folio-val-0007"


def test_logic_llm_fields() -> None:
    pw = _load("proofwriter")[0]
    assert pw.id == "ProofWriter_AttNoneg-OWA-D5-1041_Q1"
    assert pw.label == "True"
    assert pw.fields["conclusion"] == "Charlie is kind."
    assert pw.fields["premises"][:2] == ["Bob is cold.", "Bob is quiet."]
    assert pw.fields["options"] == ["A) True", "B) False", "C) Unknown"]
    pq = _load("prontoqa")[0]
    assert (pq.id, pq.label, pq.fields["conclusion"]) == ("ProntoQA_1", "False", "Max is sour.")
    ld = _load("logicaldeduction")[0]
    assert (ld.id, ld.label) == ("logical_deduction_0", "D")
    assert ld.fields["options"][3] == "D) The purple book is the second from the left."
    assert {len(e.fields["options"]) for e in _load("logicaldeduction")} == {3, 5, 7}
    for e in _load("logicaldeduction"):
        assert any(o.startswith(f"{e.label})") for o in e.fields["options"])


def test_gsm8k_and_judge_and_math500_fields() -> None:
    g = _load("gsm8k")
    assert g[0].id == "gsm8k-test-0000" and g[0].label == "18"
    assert "####" not in g[0].fields["solution"]
    assert "2125" in {e.label for e in g}  # '#### 2,125' loses its thousands separator
    judge = {e.id: e for e in _load("gsm8k-judge")}
    best = judge["gsm8k-judge-0000-175b_verification"]
    assert best.label == "correct"
    assert best.fields["question"] == g[0].fields["question"]
    assert best.fields["reference_answer"] == "18"
    assert best.fields["candidate"].endswith("A: 18")
    assert judge["gsm8k-judge-0000-6b_finetuning"].label == "incorrect"
    assert "gsm8k-judge-0012-175b_verification" in judge
    m = _load("math500")[0]
    assert m.id == "math500-0000"
    assert m.label == r"\left( 3, \frac{\pi}{2} \right)"
    assert m.fields["level"] == 2 and m.fields["subject"] == "Precalculus"


def test_limit_split_and_unknown_names() -> None:
    first5 = load_dataset("gsm8k", limit=5)
    assert [e.id for e in first5] == [e.id for e in _load("gsm8k")[:5]]
    assert load_dataset("gsm8k-judge", limit=6)[5].id == "gsm8k-judge-0001-6b_verification"
    assert load_dataset("folio", limit=0) == []
    assert len(load_dataset("FOLIO", split="validation", limit=3)) == 3
    with pytest.raises(ConfigError, match="limit"):
        load_dataset("folio", limit=-1)
    with pytest.raises(DatasetError, match="no split 'test'; available: validation, train"):
        load_dataset("folio", split="test")
    with pytest.raises(DatasetError, match=r"unknown dataset 'nope'.*folio"):
        load_dataset("nope")
    with pytest.raises(ConfigError, match="field_map"):
        load_dataset("folio", field_map={"question": "q"})


# --------------------------------------------------------------------------- malformed named-set files


def _folio_row(**overrides: object) -> dict:
    row = {"premises": ["All A are B.", "x is A."], "premises-FOL": ["∀x (A(x) → B(x))", "A(x1)"],
           "conclusion": "x is B.", "conclusion-FOL": "B(x1)", "label": "True"}
    row.update(overrides)
    return row


def _write_folio(root: Path, lines: list[str]) -> Path:
    path = root / "folio" / "folio-validation.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_bad_json_on_line_3_names_file_and_line(tmp_path: Path) -> None:
    path = _write_folio(tmp_path, [json.dumps(_folio_row()), json.dumps(_folio_row()), '{"premises": [oops'])
    with pytest.raises(DatasetError) as info:
        load_dataset("folio", data_dir=tmp_path)
    err = info.value
    assert f"{path}:3:" in str(err) and "not valid JSON" in str(err)
    assert err.line == 3 and err.path == str(path)
    assert isinstance(err, ConfigError) and isinstance(err, ValueError)


def test_missing_field_names_the_field(tmp_path: Path) -> None:
    row = _folio_row()
    del row["conclusion"]
    path = _write_folio(tmp_path, [json.dumps(_folio_row()), json.dumps(row)])
    with pytest.raises(DatasetError, match=re.escape(f"{path}:2:") + r" field 'conclusion': missing") as info:
        load_dataset("folio", data_dir=tmp_path)
    assert info.value.field == "conclusion"


def test_unknown_label_names_value_and_expected(tmp_path: Path) -> None:
    lines = [json.dumps(_folio_row())] * 3 + [json.dumps(_folio_row(label="Maybe"))]
    path = _write_folio(tmp_path, lines)
    expected = re.escape(f"{path}:4:") + r" field 'label': unknown label 'Maybe'.*False, True, Uncertain"
    with pytest.raises(DatasetError, match=expected):
        load_dataset("folio", data_dir=tmp_path)
    # the limit stops reading before the bad row
    assert len(load_dataset("folio", data_dir=tmp_path, limit=3)) == 3


def _write_logic(root: Path, name: str, records: list[dict]) -> tuple[Path, str]:
    path = root / "logic-llm" / name / "dev.json"
    path.parent.mkdir(parents=True)
    text = json.dumps(records, indent=2)
    path.write_text(text, encoding="utf-8")
    return path, text


def _logic_record(i: int, answer: str, options: list[str]) -> dict:
    return {"id": f"r{i}", "context": "A is b. B is c.", "question": "True or false? A is c.",
            "options": options, "answer": answer}


def test_logic_options_map_through_each_rows_own_options(tmp_path: Path) -> None:
    _write_logic(tmp_path, "ProofWriter", [
        _logic_record(0, "A", ["A) False", "B) True", "C) Unknown"]),
        _logic_record(1, "C", ["A) True", "B) False", "C) Unknown"]),
    ])
    got = load_dataset("proofwriter", data_dir=tmp_path)
    assert [e.label for e in got] == ["False", "Uncertain"]
    assert got[0].fields["premises"] == ["A is b.", "B is c."] and got[0].fields["conclusion"] == "A is c."


def test_logic_unknown_answer_names_the_records_line(tmp_path: Path) -> None:
    path, text = _write_logic(tmp_path, "ProntoQA", [
        _logic_record(0, "A", ["A) True", "B) False"]),
        _logic_record(1, "C", ["A) True", "B) False"]),
    ])
    record_line = text.splitlines().index("  {", 2) + 1  # second record's opening brace, 1-based
    with pytest.raises(DatasetError, match=re.escape(f"{path}:{record_line}:") + r".*unknown label 'C'") as info:
        load_dataset("prontoqa", data_dir=tmp_path)
    assert info.value.field == "answer"


def test_logic_array_syntax_error_has_line(tmp_path: Path) -> None:
    path = tmp_path / "logic-llm" / "LogicalDeduction" / "dev.json"
    path.parent.mkdir(parents=True)
    path.write_text('[\n  {"id": "a", "context": "c", "question": "q", "options": ["A) x"], "answer": "A"},\n'
                    '  {"id": "b",, }\n]\n', encoding="utf-8")
    with pytest.raises(DatasetError, match=re.escape(f"{path}:3:") + " not valid JSON"):
        load_dataset("logicaldeduction", data_dir=tmp_path)


def _judge_row(solution_value: object) -> dict:
    return {"question": "Q?", "ground_truth": "work\nA: 1,000", **{k: solution_value for k in (
        "6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification")}}


def test_judge_parses_python_literal_strings_without_eval(tmp_path: Path) -> None:
    path = tmp_path / "gsm8k" / "example_model_solutions.jsonl"
    path.parent.mkdir(parents=True)
    literal = str({"is_correct": True, "solution": "It's 1000\nA: 1000"})  # single-quoted Python literal
    marker = tmp_path / "pwned"
    evil = f"__import__('pathlib').Path({str(marker)!r}).touch()"
    path.write_text(json.dumps(_judge_row(literal)) + "\n" + json.dumps(_judge_row(evil)) + "\n")
    with pytest.raises(DatasetError, match=re.escape(f"{path}:2:") + r".*not a Python-literal dict"):
        load_dataset("gsm8k-judge", data_dir=tmp_path)
    assert not marker.exists()
    got = load_dataset("gsm8k-judge", data_dir=tmp_path, limit=4)
    assert [e.id for e in got][-1] == "gsm8k-judge-0000-175b_verification"
    assert {e.label for e in got} == {"correct"} and got[0].fields["reference_answer"] == "1000"


def test_judge_non_boolean_verdict_is_unknown_label(tmp_path: Path) -> None:
    path = tmp_path / "gsm8k" / "example_model_solutions.jsonl"
    path.parent.mkdir(parents=True)
    path.write_text(json.dumps(_judge_row({"is_correct": "maybe", "solution": "s"})) + "\n")
    with pytest.raises(DatasetError, match=r":1: field '6b_finetuning.is_correct': unknown label 'maybe'"):
        load_dataset("gsm8k-judge", data_dir=tmp_path)


# --------------------------------------------------------------------------- custom files


def test_custom_jsonl_with_field_map(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    rows = [{"qid": "a1", "q": "2+2?", "gold": "4", "meta": {"k": 1}}, {"qid": "a2", "q": "3+3?", "gold": 6}]
    path.write_text("\n".join(json.dumps(r) for r in rows) + "\n\n")
    got = load_dataset(path, field_map={"id": "qid", "label": "gold", "question": "q"})
    assert [(e.id, e.label) for e in got] == [("a1", "4"), ("a2", "6")]
    assert got[0].fields == {"question": "2+2?", "meta": {"k": 1}}


def test_custom_missing_id_uses_line_number_and_label_set_is_checked(tmp_path: Path) -> None:
    path = tmp_path / "mine.jsonl"
    path.write_text('{"question": "a", "label": true}\n\n{"question": "b", "label": "False"}\n')
    got = load_dataset(str(path))
    assert [(e.id, e.label) for e in got] == [("1", "True"), ("3", "False")]
    path.write_text('{"question": "a", "label": "True"}\n{"question": "b", "label": "Flase"}\n')
    with pytest.raises(DatasetError, match=r"mine.jsonl:2: field 'label': unknown label 'Flase'"):
        load_dataset(path, labels={"True", "False"})


def test_custom_errors(tmp_path: Path) -> None:
    path = tmp_path / "bad.jsonl"
    path.write_text('{"id": 1, "label": "x"}\n{"id": 2, "label": "y"}\nnot json\n')
    with pytest.raises(DatasetError, match=re.escape(f"{path}:3:")):
        load_dataset(path)
    path.write_text('{"id": 1, "answer": "x"}\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:1: field 'label': missing.*field_map"):
        load_dataset(path)
    path.write_text('{"qid": 1, "label": "x"}\n{"label": "y"}\n')
    with pytest.raises(DatasetError, match=r"bad.jsonl:2: field 'qid': missing"):
        load_dataset(path, field_map={"id": "qid"})
    path.write_text('{"id": "a", "label": "x"}\n{"id": "a", "label": "y"}\n')
    with pytest.raises(DatasetError, match="duplicate id 'a'"):
        load_dataset(path)
    path.write_text('[1, 2]\n')
    with pytest.raises(DatasetError, match="expected a JSON object"):
        load_dataset(path)
    with pytest.raises(ConfigError, match="split"):
        load_dataset(path, split="dev")


def test_custom_encoding_problems(tmp_path: Path) -> None:
    path = tmp_path / "bom.jsonl"
    path.write_bytes(b"\xef\xbb\xbf" + b'{"id": "a", "label": "x"}\n')  # a BOM from a Windows editor
    assert [e.id for e in load_dataset(path)] == ["a"]
    path.write_bytes(b'{"id": "a", "label": "x"}\n{"id": "b", "label": "\xff"}\n')
    with pytest.raises(DatasetError, match=r"bom.jsonl:2: not UTF-8"):
        load_dataset(path)


def test_custom_json_array_file(tmp_path: Path) -> None:
    path = tmp_path / "mine.json"
    path.write_text(json.dumps([{"id": "x", "label": "1", "question": "q"}, {"id": "y", "label": "2"}], indent=1))
    assert [e.id for e in load_dataset(path)] == ["x", "y"]


# --------------------------------------------------------------------------- dev/test split


def test_dev_test_split_is_deterministic_disjoint_and_order_free() -> None:
    examples = _load("folio")
    dev, test = dev_test_split(examples, 0.25, seed=7)
    assert len(dev) == 51 and len(test) == 153
    assert {e.id for e in dev}.isdisjoint({e.id for e in test})
    assert {e.id for e in dev} | {e.id for e in test} == {e.id for e in examples}
    assert [e.id for e in dev] == [e.id for e in examples if e in dev]  # input order kept
    again, _ = dev_test_split(examples, 0.25, seed=7)
    assert again == dev
    shuffled = list(examples)
    random.Random(0).shuffle(shuffled)
    assert {e.id for e in dev_test_split(shuffled, 0.25, seed=7)[0]} == {e.id for e in dev}
    assert {e.id for e in dev_test_split(examples, 0.25, seed=8)[0]} != {e.id for e in dev}
    assert dev_test_split(examples, 0.0)[0] == [] and len(dev_test_split(examples, 1.0)[0]) == 204
    with pytest.raises(ConfigError):
        dev_test_split(examples, 1.5, seed=0)


# --------------------------------------------------------------------------- the shipped subsets


def _by_id(name: str) -> dict[str, Example]:
    return {e.id: e for e in _load(name)}


def test_subset_sizes_and_label_balance() -> None:
    assert Counter(e.label for e in _load("folio-clean")) == {"True": 63, "False": 54, "Uncertain": 65}
    assert Counter(e.label for e in _load("proofwriter-360")) == {"True": 120, "False": 120, "Uncertain": 120}
    assert len(_load("gsm8k-easy")) == 440


@pytest.mark.parametrize(("subset", "full"), [("folio-clean", "folio"), ("proofwriter-360", "proofwriter"),
                                              ("gsm8k-easy", "gsm8k")])
def test_subset_rows_are_the_full_sets_rows_under_the_same_ids(subset: str, full: str) -> None:
    whole = _by_id(full)
    ids = [e.id for e in _load(subset)]
    assert ids == [i for i in whole if i in set(ids)]  # the full set's order
    for example in _load(subset):
        assert example == whole[example.id]


def test_folio_clean_is_every_row_whose_gold_fol_reproduces_its_label() -> None:
    """LINC's filter, re-derived with the prover: one formula per sentence, all parse, gold label proved."""
    from agentkit.verifiers.fol import FOLSyntaxError, check

    def agrees(e: Example) -> bool:
        if len(e.fields["premises"]) != len(e.fields["premises_fol"]):
            return False
        try:
            return check(e.fields["premises_fol"], e.fields["conclusion_fol"], timeout_s=10.0).label == e.label
        except FOLSyntaxError:
            return False

    clean = set(_by_id("folio-clean"))
    assert {e.id for e in _load("folio") if agrees(e)} == clean
    # 191 rows agree (docs/FOL.md); 9 of them pair their sentences with a different number of formulas
    misaligned = {f"folio-val-{i:04d}" for i in (9, 10, 11, 105, 106, 107, 173, 174, 175)}
    assert not misaligned & clean


def test_proofwriter_360_is_the_seed_0_draw() -> None:
    import hashlib

    def rank(e: Example) -> bytes:
        return hashlib.sha256(f"0\x00{e.id}".encode()).digest()

    drawn = set()
    for label in ("True", "False", "Uncertain"):
        drawn |= {e.id for e in sorted((e for e in _load("proofwriter") if e.label == label), key=rank)[:120]}
    assert set(_by_id("proofwriter-360")) == drawn


def test_gsm8k_easy_is_every_problem_with_at_most_two_calculation_lines() -> None:
    def calc_lines(e: Example) -> int:
        return sum("<<" in line for line in e.fields["solution"].splitlines())

    assert {e.id for e in _load("gsm8k") if calc_lines(e) <= 2} == set(_by_id("gsm8k-easy"))
    assert Counter(calc_lines(e) for e in _load("gsm8k-easy")) == {0: 18, 1: 65, 2: 357}


def test_folio_train_split_for_majority_label_baselines() -> None:
    train = load_dataset("folio", split="train")
    assert len(train) == 1004 and len({e.id for e in train}) == 1004
    assert Counter(e.label for e in train) == {"True": 388, "Uncertain": 330, "False": 286}  # "Unknown" read as Uncertain
    first = train[0]
    assert first.id == "folio-ex1131" and first.fields["conclusion_fol"] is None
    assert first.fields["premises_fol"][0] == "∀x (Drinks(x) → Dependent(x))"
