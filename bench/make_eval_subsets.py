"""Derive the evaluation subsets shipped in agentkit/eval/data from their full sets (see docs/FOL.md).

* ``folio-clean`` (folio/folio-clean.jsonl): the FOLIO validation rows whose gold FOL gives one
  formula per premise sentence, parses, and makes our prover (z3, 10 s) reproduce the gold label;
  the filters LINC's own code applies before it evaluates (benlipkin/linc eval/tasks/folio.py).
* ``proofwriter-360`` (logic-llm/ProofWriter/dev-360.json): 120 True, 120 False, 120 Uncertain
  of the 600 depth-5 rows: within each label, the rows ranked by sha256(f"{SEED}\\x00{id}"), first
  120 kept, written in the file's order. Ours: the paper's ids are not public.
* ``gsm8k-easy`` (gsm8k/test-easy.jsonl): GSM8K test problems whose reference solution has at most
  2 calculation lines (lines holding a ``<<...>>`` calculator annotation).

Rows are copied unchanged, except that folio-clean and gsm8k-easy rows gain an ``id`` field holding
the id the row has in its full set (folio-val-NNNN, gsm8k-test-NNNN); ProofWriter rows have their own.
Deterministic: running it again rewrites the same bytes. Usage::

    python bench/make_eval_subsets.py [--check]   # --check: compare with the shipped files, write nothing
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from agentkit.verifiers.fol import FOLSyntaxError, check

DATA = Path(__file__).resolve().parents[1] / "agentkit" / "eval" / "data"
SEED = 0
PER_LABEL = 120
MAX_CALC_LINES = 2
_TFU = {"True": "True", "False": "False", "Uncertain": "Uncertain", "Unknown": "Uncertain"}


def gold_fol_agrees(row: dict[str, Any], timeout_s: float = 10.0) -> bool:
    """One formula per sentence, all parse, and the prover's label on them is the gold label."""
    if len(row["premises"]) != len(row["premises-FOL"]):
        return False
    try:
        result = check(row["premises-FOL"], row["conclusion-FOL"], timeout_s=timeout_s)
    except FOLSyntaxError:
        return False
    return result.conclusive and result.label == _TFU[row["label"]]


def folio_clean(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [{"id": f"folio-val-{i:04d}", **row} for i, row in enumerate(rows) if gold_fol_agrees(row)]


def _proofwriter_label(row: dict[str, Any]) -> str:
    text = {o.split(")", 1)[0].strip(): o.split(")", 1)[1].strip() for o in row["options"]}[row["answer"]]
    return _TFU[text]


def proofwriter_balanced(rows: list[dict[str, Any]], per_label: int = PER_LABEL, seed: int = SEED) -> list[dict[str, Any]]:
    def rank(row: dict[str, Any]) -> bytes:
        return hashlib.sha256(f"{seed}\x00{row['id']}".encode()).digest()

    keep: set[str] = set()
    for label in ("True", "False", "Uncertain"):
        of_label = [r for r in rows if _proofwriter_label(r) == label]
        if len(of_label) < per_label:
            raise SystemExit(f"only {len(of_label)} {label} rows; cannot draw {per_label}")
        keep.update(r["id"] for r in sorted(of_label, key=rank)[:per_label])
    return [r for r in rows if r["id"] in keep]


def calculation_lines(solution: str) -> int:
    return sum("<<" in line for line in solution.splitlines())


def gsm8k_easy(rows: list[dict[str, Any]], max_lines: int = MAX_CALC_LINES) -> list[dict[str, Any]]:
    return [{"id": f"gsm8k-test-{i:04d}", **row} for i, row in enumerate(rows)
            if calculation_lines(row["answer"]) <= max_lines]


def _jsonl(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line.strip()]


def _as_jsonl(rows: Iterable[dict[str, Any]]) -> str:
    return "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows)


def outputs() -> dict[Path, str]:
    folio = _jsonl(DATA / "folio" / "folio-validation.jsonl")
    proofwriter = json.loads((DATA / "logic-llm" / "ProofWriter" / "dev.json").read_text(encoding="utf-8"))
    gsm8k = _jsonl(DATA / "gsm8k" / "test.jsonl")
    return {
        DATA / "folio" / "folio-clean.jsonl": _as_jsonl(folio_clean(folio)),
        DATA / "logic-llm" / "ProofWriter" / "dev-360.json":
            json.dumps(proofwriter_balanced(proofwriter), ensure_ascii=False, indent=2) + "\n",
        DATA / "gsm8k" / "test-easy.jsonl": _as_jsonl(gsm8k_easy(gsm8k)),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--check", action="store_true", help="compare with the shipped files; write nothing")
    args = ap.parse_args(argv)
    stale = []
    for path, text in outputs().items():
        n = text.count("\n") if path.suffix == ".jsonl" else len(json.loads(text))
        if args.check:
            same = path.is_file() and path.read_text(encoding="utf-8") == text
            stale += [] if same else [path]
            print(f"{path.relative_to(DATA)}: {n} rows, {'up to date' if same else 'STALE'}")
        else:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(DATA)}: {n} rows")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
