"""LINC on a FOLIO problem: the small model translates each sentence into first-order logic, the z3
prover decides, and K translations vote.

Guided decoding under the FOL grammar means every sample is a well-formed program: the model cannot
make a syntax error, only a wrong translation. Pass a FOLIO row id to try another problem.

    python examples/linc.py [folio-val-0045] [--k 5]
"""

import argparse

from agentkit.backends.llamacpp import LlamaCppBackend
from agentkit.eval import load_dataset
from agentkit.graphs import linc

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("row", nargs="?", default="folio-val-0045", help="a FOLIO validation row id")
    ap.add_argument("--k", type=int, default=5, help="samples, one request (the paper uses 10)")
    ap.add_argument("--seed", type=int, default=1)
    args = ap.parse_args()

    rows = {e.id: e for e in load_dataset("folio", split="validation")}
    if args.row not in rows:
        raise SystemExit(f"no FOLIO validation row {args.row!r}; ids look like folio-val-0045")
    problem = rows[args.row]
    graph = linc.build(LlamaCppBackend(), k=args.k, seed=args.seed).compile()
    out = graph.invoke(linc.input_from(problem))

    print("Premises:\n  " + "\n  ".join(out.premises) + f"\nConclusion: {out.conclusion}\n")
    for i, sample in enumerate(out.samples, 1):
        print(f"Sample {i}: {sample.label}  ({sample.reason})")
        for formula in [*(sample.premises_fol or []), sample.conclusion_fol or "-"]:
            print(f"    {formula}")
    print(f"\nVotes {out.votes.counts}, errors {out.error_count}/{out.k}")
    said = out.answer or "nothing: every sample failed (scored wrong, as in the paper)"
    print(f"LINC says {said}; FOLIO's gold label is {problem.label}")
