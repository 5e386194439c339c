"""A cascade on a GSM8K problem: SmolLM2 (llama.cpp, in-process) answers by default with MC-CoT, and a
larger model behind an OpenAI-compatible endpoint (vLLM, llama.cpp's server, a hosted API) answers
only when the small model's vote agreement is below the threshold.

    python examples/cascade.py --large-base-url http://127.0.0.1:8000/v1 --large-model Qwen/Qwen3-8B
    python examples/cascade.py --calibrate 20 --target-accuracy 0.5 ...   # pick the threshold first

Without --large-base-url the second tier is SmolLM2 again with three times the samples, so the
script also runs offline. ``--calibrate N`` runs both tiers on the dev half of N GSM8K problems
(agentkit.eval.dev_test_split) and uses the threshold that reaches --target-accuracy most cheaply
(or, without a target, the one with the lowest cost per correct answer).
"""

import argparse
import asyncio
import json

from agentkit.backends import make_backend
from agentkit.backends.llamacpp import LlamaCppBackend
from agentkit.eval import dev_test_split, load_dataset
from agentkit.graphs import cascade, mccot
from agentkit.graphs.cascade import Tier

if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--large-base-url", help="OpenAI-compatible endpoint of the large tier, e.g. vLLM's /v1")
    ap.add_argument("--large-model", help="model name served there (default: the server's first model)")
    ap.add_argument("--k", type=int, default=3, help="MC-CoT samples on the small tier")
    ap.add_argument("--threshold", type=float, default=0.6, help="escalate when agreement is below this")
    ap.add_argument("--calibrate", type=int, metavar="N", help="calibrate the threshold on N GSM8K problems first")
    ap.add_argument("--target-accuracy", type=float, help="with --calibrate: the accuracy to reach")
    args = ap.parse_args()

    small = LlamaCppBackend()
    if args.large_base_url:
        large = make_backend("openai", base_url=args.large_base_url, model=args.large_model)
        large_tier = Tier(name="large", task=mccot.build(large, k=args.k, answer_kind="number", seed=1))
    else:
        more = mccot.build(small, k=3 * args.k, answer_kind="number", seed=1)
        large_tier = Tier(name="small_more_samples", task=more)
    tiers = [Tier(name="small", task=mccot.build(small, k=args.k, answer_kind="number", seed=1)), large_tier]

    problems = load_dataset("gsm8k", limit=max(args.calibrate or 0, 1))
    threshold = args.threshold
    if args.calibrate:
        dev, problems = dev_test_split(problems, dev_fraction=0.5, seed=0)
        calibration = asyncio.run(cascade.calibrate(tiers, dev, target_accuracy=args.target_accuracy,
                                                    answer_kind="number"))
        threshold = calibration.threshold
        print(f"calibrated on {len(dev)} dev problems: threshold {threshold:.3f} "
              f"(accuracy {calibration.chosen.accuracy:.2f}, mean cost {calibration.chosen.mean_cost:.4f})")

    problem = problems[0]  # Janet's ducks unless calibration took it for dev
    out = cascade.build(tiers=tiers, threshold=threshold).compile().invoke(cascade.input_from(problem))
    print(f"Problem: {problem.fields['question']}")
    for a in out.attempts:
        print(f"  tier {a.tier} ({', '.join(a.models)}): answer {a.answer}, confidence {a.confidence}, "
              f"cost {a.cost:.4f}" + (f" -> escalated: {a.failure} ({a.detail})" if a.escalated else ""))
    print(json.dumps({"answer": out.answer, "answered_by": out.answered_by, "confident": out.confident,
                      "gold": problem.label, "cost": out.cost}))
