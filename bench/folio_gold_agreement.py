"""How often does the prover, run on FOLIO's *gold* FOL, reproduce FOLIO's gold label?

This measures the verifier and the annotations, not a model: a LINC pipeline can never beat this
ceiling with gold-quality translations. Rows with a malformed gold formula count as errors (they
cannot agree). Usage::

    python bench/folio_gold_agreement.py [--data agentkit/eval/data/folio/folio-validation.jsonl]
                                         [--timeout 10] [--show-disagreements]
"""

from __future__ import annotations

import argparse
import collections
import json
import sys
import time
from pathlib import Path

from agentkit.verifiers.fol import FOLSyntaxError, check

_ROOT = Path(__file__).resolve().parents[1]


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", type=Path, default=_ROOT / "agentkit/eval/data/folio/folio-validation.jsonl")
    ap.add_argument("--timeout", type=float, default=10.0, help="z3 timeout per check, seconds")
    ap.add_argument("--show-disagreements", action="store_true")
    args = ap.parse_args(argv)

    rows = [json.loads(line) for line in args.data.read_text(encoding="utf-8").splitlines() if line.strip()]
    counts: collections.Counter[str] = collections.Counter()
    confusion: collections.Counter[tuple[str, str]] = collections.Counter()
    disagreements = []
    start = time.monotonic()
    for index, row in enumerate(rows):
        gold = {"Unknown": "Uncertain"}.get(row["label"], row["label"])
        try:
            result = check(row["premises-FOL"], row["conclusion-FOL"], timeout_s=args.timeout)
        except FOLSyntaxError as exc:
            counts["syntax_error"] += 1
            confusion[(gold, "Error")] += 1
            disagreements.append((index, gold, "Error", str(exc)))
            continue
        confusion[(gold, result.label)] += 1
        counts["timeout"] += result.timed_out
        counts["inconsistent"] += result.premises_consistent is False
        if result.label == gold:
            counts["agree"] += 1
        else:
            disagreements.append((index, gold, result.label, result.reason))
    elapsed = time.monotonic() - start

    n = len(rows)
    print(f"rows: {n}  agree: {counts['agree']}  agreement: {counts['agree'] / n:.1%}")
    print(
        f"syntax errors: {counts['syntax_error']}  timeouts: {counts['timeout']}  "
        f"inconsistent premises: {counts['inconsistent']}  time: {elapsed:.1f}s"
    )
    labels = ["True", "False", "Uncertain"]
    print("gold \\ prover  " + "  ".join(f"{p:>9}" for p in [*labels, "Error"]))
    for g in labels:
        print(f"{g:>13}  " + "  ".join(f"{confusion[(g, p)]:>9}" for p in [*labels, "Error"]))
    if args.show_disagreements:
        for index, gold, got, why in disagreements:
            print(f"\nrow {index}: gold {gold}, prover {got}: {why}")
            print("  conclusion: " + rows[index]["conclusion"])
            print("  conclusion-FOL: " + rows[index]["conclusion-FOL"])
    return 0


if __name__ == "__main__":
    sys.exit(main())
