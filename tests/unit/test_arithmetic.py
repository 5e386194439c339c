"""Exact arithmetic checking: evaluation, hostile input, claims, GSM8K annotations."""

from __future__ import annotations

import json
import os
import time
from collections import Counter
from fractions import Fraction
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentkit.errors import InputError, VerifierError
from agentkit.verifiers.arithmetic import (
    MAX_BITS,
    ArithmeticDomainError,
    ArithmeticInputError,
    ArithmeticLimitError,
    ArithmeticSyntaxError,
    ArithmeticVerifier,
    check_claim,
    check_solution,
    evaluate,
    find_claims,
)

DATA = Path(__file__).resolve().parents[2] / "agentkit" / "eval" / "data" / "gsm8k"
SENTINEL = Path("/tmp/AK_SENTINEL")


# -------------------------------------------------------------------------------- evaluation
@pytest.mark.parametrize(
    ("expr", "value"),
    [
        ("1 + 2 * 3", 7),
        ("(1 + 2) * 3", 9),
        ("2 ** 3 ** 2", 512),  # right-associative, like Python
        ("-2 ** 2", -4),  # unary minus binds looser than **
        ("2 ^ 10", 1024),  # ^ is power, never XOR
        ("10 - 4 - 3", 3),
        ("48/2", 24),
        ("7 // 2", 3),
        ("-7 // 2", -4),
        ("-7 % 3", 2),
        ("7.5 % 2", Fraction(3, 2)),
        ("0.1 + 0.2", Fraction(3, 10)),  # exact, not 0.30000000000000004
        ("1/3 + 1/6", Fraction(1, 2)),
        ("007 + 1", 8),
        (".5 + 5.", Fraction(11, 2)),
        ("1e3 + 2.5E-1", Fraction(4001, 4)),
        ("3 × 4 ÷ 6 − 1", 1),
        ("+-+1", -1),
        ("16 ** 0.5", 4),
        ("(3 ** 6000) ** (1/3)", 3**2000),  # exact roots of big numbers are cheap (Newton)
        ("(8/27) ** (2/3)", Fraction(4, 9)),
        ("(-8) ** (1/3)", -2),
        ("2 ** -2", Fraction(1, 4)),
        ("0 ** 0", 1),
        ("1 ** (10 ** 100)", 1),
        ("(-1) ** (10 ** 100 + 1)", -1),
        ("  ( ( 42 ) )\n", 42),
    ],
)
def test_evaluate_exact(expr: str, value: Fraction | int) -> None:
    result = evaluate(expr)
    assert isinstance(result, Fraction)
    assert result == value


@pytest.mark.parametrize(
    ("expr", "error", "position"),
    [
        ("1 + a", ArithmeticSyntaxError, 4),
        ("1 +", ArithmeticSyntaxError, None),
        ("1 2", ArithmeticSyntaxError, 2),
        ("(1 + 2", ArithmeticSyntaxError, 0),
        ("1 + 2)", ArithmeticSyntaxError, 5),
        ("2(3)", ArithmeticSyntaxError, 0),
        ("()", ArithmeticSyntaxError, 0),
        ("", ArithmeticSyntaxError, None),
        ("1, 2", ArithmeticSyntaxError, 1),
        ("1 == 1", ArithmeticSyntaxError, 2),
        ("1 / 0", ArithmeticDomainError, 0),
        ("5 // (2 - 2)", ArithmeticDomainError, 0),
        ("5 % 0.0", ArithmeticDomainError, 0),
        ("0 ** -1", ArithmeticDomainError, 0),
        ("2 ** 0.5", ArithmeticDomainError, 0),
        ("(-4) ** 0.5", ArithmeticDomainError, 0),
        ("2 ** (1/100)", ArithmeticDomainError, 0),
        ("2 ** 20000", ArithmeticLimitError, 0),
        ("(2 ** 9000 + 1) ** 0.5", ArithmeticDomainError, 0),
        ("1e1001", ArithmeticLimitError, 0),
    ],
)
def test_evaluate_errors_are_clean_and_positioned(
    expr: str, error: type[Exception], position: int | None
) -> None:
    with pytest.raises(error) as info:
        evaluate(expr)
    assert isinstance(info.value, InputError) and isinstance(info.value, ValueError)
    if position is not None:
        assert info.value.position == position, str(info.value)
        assert f"position {position}" in str(info.value)


def test_error_names_the_offending_token() -> None:
    with pytest.raises(ArithmeticSyntaxError) as info:
        evaluate("3 * x")
    assert info.value.token == "x" and "'x'" in str(info.value)


def test_values_are_bounded_by_max_bits() -> None:
    assert evaluate("2 ** 9000") == 2**9000
    with pytest.raises(ArithmeticLimitError):
        evaluate("(2 ** 9000) * (2 ** 9000)")
    with pytest.raises(ArithmeticLimitError):
        evaluate(f"1 / 2 ** {MAX_BITS + 1}")


# ------------------------------------------------------------------------- security corpus
_HOSTILE = [
    "__import__('os').system('touch /tmp/AK_SENTINEL')",
    "().__class__.__bases__[0].__subclasses__()",
    "lambda: __import__('os').system('touch /tmp/AK_SENTINEL')",
    "(lambda x: x)(1)",
    "(1).__class__",
    "1 .real",
    "x",
    "True",
    "None",
    "open('/tmp/AK_SENTINEL', 'w')",
    "eval('1')",
    "exec('import os')",
    "[1][0]",
    "{1: 2}[1]",
    "'a' * 3",
    "b'x'",
    "1 if 1 else 2",
    "1; import os",
    "(y := 1)",
    "1_000",
    "0x10",
    "1j",
    "f'{1}'",
    "\x00",
    "9**9**9**9",
    "9**9**9",
    "10**100000",
    "10**10**10",
    "2**-100000",
    "(10**5000)",
    "1e999999999",
    "1" * 5000,
    "(" * 100_000 + "1" + ")" * 100_000,
    "-" * 100_000 + "1",
    "1" + "+1" * 100_000,
    "1+" * 300 + "1",
    "2**" * 100 + "2",
    "(" * 65 + "1" + ")" * 65,
    "1" * (1 << 20),  # 1 MB
    "1+" * (1 << 19) + "1",  # 1 MB of operators
]


def _short(expr: str) -> str:
    return repr(expr[:40]) + (f"..({len(expr)} chars)" if len(expr) > 40 else "")


@pytest.mark.parametrize("expr", _HOSTILE, ids=_short)
def test_hostile_input_is_rejected_quickly_and_cleanly(expr: str) -> None:
    SENTINEL.unlink(missing_ok=True)
    start = time.thread_time()  # this thread's CPU: neither load nor the session's other threads can fail it
    with pytest.raises(ArithmeticInputError) as info:
        evaluate(expr)
    elapsed = time.thread_time() - start
    assert elapsed < 1.0, f"{elapsed:.2f}s"
    assert isinstance(info.value, InputError)
    assert len(str(info.value)) < 500  # the message names the problem, not the whole input
    assert not SENTINEL.exists()


def test_hostile_input_through_claims_and_solutions_never_executes() -> None:
    for expr in _HOSTILE[:24]:
        if expr == "0x10":
            continue  # in prose '0x10' reads as 0 times 10: parsed, not executed
        with pytest.raises(InputError):
            check_claim(f"{expr} = 1")
        assert check_solution(f"<<{expr}=1>>1 and {expr} = 1").label == "no-claims"
    assert not SENTINEL.exists()


@pytest.mark.parametrize(
    "text",
    [
        "1+" * 90_000 + "1",  # one long run of arithmetic: skipped, not backtracked through
        "1=1=" * 45_000,
        ("1+" * 90 + "1=1 and ") * 1_000,  # many runs at the length cap
        ("3 + 4 = 7 apples, " * 10_000)[:199_000],
        ("<<" + "1+" * 200 + "1=401>>") * 450,
        "(" * 150_000,
    ],
    ids=["long-run", "equals-chain", "capped-runs", "many-claims", "big-annotations", "parens"],
)
def test_solution_scanning_stays_fast_on_hostile_text(text: str) -> None:
    # CPU time of this thread, not wall time or the process's: other jobs on a loaded machine, and the
    # test session's own background threads (the vLLM/Phoenix prewarm), cannot fail it, while a
    # quadratic scan of these inputs would still take far longer than the bound.
    start = time.thread_time()
    check_solution(text)
    assert time.thread_time() - start < 3.0


def test_oversized_solution_is_a_limit_error() -> None:
    with pytest.raises(ArithmeticLimitError, match="200000"):
        check_solution("1 + 1 = 2. " * 100_000)
    with pytest.raises(VerifierError, match="arithmetic.*ArithmeticLimitError"):
        ArithmeticVerifier().verify("x" * 1_000_000)


@pytest.mark.parametrize("module_name", ["arithmetic", "_arith_eval"])
def test_no_eval_exec_or_compile_in_the_module(module_name: str) -> None:
    import ast as pyast
    import importlib
    import inspect

    module = importlib.import_module(f"agentkit.verifiers.{module_name}")
    tree = pyast.parse(inspect.getsource(module))
    called = {
        node.func.id
        for node in pyast.walk(tree)
        if isinstance(node, pyast.Call) and isinstance(node.func, pyast.Name)
    }
    assert not called & {"eval", "exec", "compile", "__import__"}


# ----------------------------------------------------------------------- property-based tests
_OPS = ["+", "-", "*", "/", "//", "%", "**"]


@st.composite
def _leaf(draw: st.DrawFn) -> tuple[str, Fraction]:
    if draw(st.booleans()):
        n = draw(st.integers(0, 10**6))
        return str(n), Fraction(n)
    whole = draw(st.integers(0, 999))
    decimals = draw(st.text("0123456789", min_size=1, max_size=4))
    text = f"{whole}.{decimals}"
    return text, Fraction(int(whole) * 10 ** len(decimals) + int(decimals), 10 ** len(decimals))


_Tree = Any  # ("leaf", text, value) | ("unary", op, tree) | ("binary", op, tree, tree)


def _trees() -> st.SearchStrategy[_Tree]:
    leaves = _leaf().map(lambda lv: ("leaf", lv[0], lv[1]))
    return st.recursive(
        leaves,
        lambda sub: st.one_of(
            st.tuples(st.just("unary"), st.sampled_from(["-", "+"]), sub),
            st.tuples(st.just("binary"), st.sampled_from(_OPS), sub, sub),
        ),
        max_leaves=12,
    )


class _Undefined(Exception):
    pass


def _reference(tree: _Tree) -> Fraction:
    """The value of the generated tree computed directly (no parsing, no eval)."""
    kind = tree[0]
    if kind == "leaf":
        return tree[2]
    if kind == "unary":
        v = _reference(tree[2])
        return -v if tree[1] == "-" else v
    op, left, right = tree[1], _reference(tree[2]), _reference(tree[3])
    if op in ("/", "//", "%") and right == 0:
        raise _Undefined
    if op == "+":
        return left + right
    if op == "-":
        return left - right
    if op == "*":
        return left * right
    if op == "/":
        return left / right
    if op == "//":
        return Fraction(left // right)
    if op == "%":
        return left % right
    # power: the generator only keeps small integer exponents (see _render)
    if right.denominator != 1 or abs(right) > 6 or (left == 0 and right < 0):
        raise _Undefined
    if max(left.numerator.bit_length(), left.denominator.bit_length()) * abs(right) > 2000:
        raise _Undefined
    return left ** int(right)


def _render(tree: _Tree, spaces: st.DrawFn) -> str:
    """Fully parenthesised text, with random spacing and alternative operator spellings."""
    kind = tree[0]
    if kind == "leaf":
        return tree[1]
    pad = spaces(st.sampled_from(["", " ", "  "]))
    if kind == "unary":
        return f"{tree[1]}{pad}({_render(tree[2], spaces)})"
    op = tree[1]
    if op == "**":
        op = spaces(st.sampled_from(["**", "^"]))
    elif op == "*":
        op = spaces(st.sampled_from(["*", "×"]))
    return f"({_render(tree[2], spaces)}){pad}{op}{pad}({_render(tree[3], spaces)})"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(tree=_trees(), data=st.data())
def test_random_trees_evaluate_to_their_reference_value(tree: _Tree, data: st.DataObject) -> None:
    text = _render(tree, data.draw)
    try:
        expected = _reference(tree)
    except _Undefined:
        try:
            evaluate(text)
        except ArithmeticInputError:
            pass  # division by zero / out-of-range powers must fail cleanly, never crash
        return
    except (OverflowError, ZeroDivisionError):
        return
    if max(expected.numerator.bit_length(), expected.denominator.bit_length()) > MAX_BITS:
        with pytest.raises(ArithmeticLimitError):
            evaluate(text)
        return
    try:
        assert evaluate(text) == expected, text
    except ArithmeticLimitError:
        pass  # an intermediate value may exceed the bound even when the result does not


@settings(max_examples=500, deadline=None)
@given(st.one_of(st.text(max_size=200), st.text("0123456789+-*/%^().eE ×÷−,=<>x_", max_size=120)))
def test_random_strings_only_raise_input_errors(text: str) -> None:
    try:
        assert isinstance(evaluate(text), Fraction)
    except ArithmeticInputError:
        pass
    for claim in find_claims(text):  # never raises on any text
        assert claim.source in ("annotation", "equation")
    assert check_solution(text).label in ("consistent", "inconsistent", "no-claims")


# -------------------------------------------------------------------------------------- claims
@pytest.mark.parametrize(
    ("claim", "ok"),
    [
        ("48 / 2 = 24", True),
        ("3 + 4 * 2 = 11", True),
        ("3 + 4 * 2 = 14", False),
        ("(3 + 4) * 2 = 14", True),
        ("0.1 + 0.2 = 0.3", True),
        ("10 / 3 = 3.33", True),  # rounded to the digits shown
        ("10 / 3 = 3.3", True),
        ("2 / 3 = 0.6", True),  # truncated
        ("2 / 3 = 0.67", True),
        ("10 / 3 = 3.34", False),
        ("1 / 3 = 0.4", False),
        ("10 / 3 = 3", False),  # an integer claim is exact
        ("6 * 0.10 = 0.6000000000000001", True),  # a float's rendering of the right value
        ("1 / 3 = 0.3333333333333999", False),
        ("$1,000 + $500 = $1,500", True),
        ("2 x 3 = 6", True),
        ("2 + 2 == 4", True),
        ("2 * 4 + 3 * 6 = 8 + 18 = 26", True),  # chains hold throughout
        ("2 + 2 = 4 = 5", False),
        ("3/2 = 1.50 + 3 = 4.50", True),  # running total carried on
        ("3/2 = 2 + 3 = 5", False),
        ("9 * 2 = 18.", True),
    ],
)
def test_check_claim(claim: str, ok: bool) -> None:
    verdict = check_claim(claim)
    assert verdict.ok is ok, verdict.reason
    assert verdict.label == ("correct" if ok else "incorrect")
    assert verdict.score == (1.0 if ok else 0.0)


def test_wrong_claim_reason_gives_the_true_value() -> None:
    assert check_claim("7 * 8 = 54").reason == "7 * 8 is 56, not 54"
    assert "10/3 (~3.33333)" in check_claim("10/3 = 3.5").reason
    huge = check_claim("10 ** 3000 / 3 = 1")  # too big for a float: still a clean verdict
    assert huge.ok is False and "(~3.33333E+2999)" in huge.reason


@pytest.mark.parametrize("text", ["no equation here", "= 5", "3 + 4 =", "x + 1 = 2", "1 / 0 = 1"])
def test_check_claim_rejects_non_claims(text: str) -> None:
    with pytest.raises(ArithmeticInputError):
        check_claim(text)


# ---------------------------------------------------------------------------------- solutions
def test_check_solution_annotations_and_prose() -> None:
    good = "Janet sells 16 - 3 - 4 = <<16-3-4=9>>9 eggs.\nShe makes 9 * 2 = $<<9*2=18>>18.\n#### 18"
    v = check_solution(good)
    assert (v.ok, v.score, v.label) == (True, 1.0, "consistent")
    claims = find_claims(good)
    assert [c.source for c in claims] == ["annotation", "annotation"]  # prose duplicates merged

    bad = "She has 16 - 3 = <<16-3=13>>13 eggs and makes 13 * 2 = $<<13*2=24>>24."
    v = check_solution(bad)
    assert (v.ok, v.score, v.label) == (False, 0.5, "inconsistent")
    assert "13*2 = 24 (actually 26)" in v.reason

    prose_only = "First 12 + 30 = 42 apples, then 42 / 6 = 8 per box."
    v = check_solution(prose_only)
    assert v.label == "inconsistent" and v.score == 0.5
    assert check_solution(prose_only, equations=False).label == "no-claims"

    none = check_solution("The answer is 42.")
    assert (none.ok, none.score, none.label) == (None, None, "no-claims")


@pytest.mark.parametrize(
    "fragment",
    [
        "James slept 9 hours * 2/3 = 6 hours.",  # '2/3 = 6' is part of '9 hours * 2/3'
        "Yuri scored 1/2 (68) + 10 = 44 points",
        "The room's perimeter is 2(40+9) = 98",
        "After Thursday, he had 5 - 1 - 1/2 = 3 1/2 hours left.",
        "-30\n-30/3 = -10 degrees",
        "so 30 - 8 * 3 = 30 - 24 = 6 days",
        "the chance is 50% * 50% = 25%.",
        "$350 000 x 5/100 = $17500",
    ],
)
def test_prose_fragments_are_not_misread_as_wrong_claims(fragment: str) -> None:
    assert check_solution(fragment).ok is not False, find_claims(fragment)


def test_arithmetic_verifier() -> None:
    v = ArithmeticVerifier()
    assert v.hard is True and v.name == "arithmetic"
    assert v.verify("2 + 2 = <<2+2=4>>4").ok is True
    assert v.verify("2 + 2 = <<2+2=5>>5").ok is False
    assert v.verify("no numbers").ok is None
    assert ArithmeticVerifier(require_claims=True).verify("no numbers").ok is False

    by_field = ArithmeticVerifier(field="reasoning")
    assert by_field.verify({"reasoning": "7 * 8 = 54", "answer": "54"}).ok is False
    with pytest.raises(VerifierError, match="arithmetic.*field 'reasoning'"):
        by_field.verify({"answer": "54"})
    with pytest.raises(VerifierError, match="expected solution text"):
        v.verify(42)


# ------------------------------------------------------------------------------ real GSM8K data
def _gsm8k(name: str) -> list[dict[str, Any]]:
    with open(DATA / name, encoding="utf-8") as fh:
        return [json.loads(line) for line in fh]


def test_gsm8k_gold_annotations_are_consistent() -> None:
    rows = _gsm8k("test.jsonl")
    assert len(rows) == 1319
    annotated = [r for r in rows if "<<" in r["answer"]]
    labels = Counter(check_solution(r["answer"], equations=False).label for r in annotated)
    # Measured: 1301 of 1301 annotated rows consistent (18 gold solutions carry no annotation).
    assert labels["consistent"] / len(annotated) >= 0.99, labels
    assert labels["no-claims"] == 0

    full = Counter(check_solution(r["answer"]).label for r in rows)
    checked = full["consistent"] + full["inconsistent"]
    # Measured: 1302 consistent, 2 inconsistent (real slips in the gold prose: '$32 - $20 = $300',
    # '364 / 4 = 273'), 15 without any checkable claim.
    assert full["consistent"] / checked >= 0.99, full
    assert full["no-claims"] <= 20, full


def test_gsm8k_model_solutions_flagged_inconsistent_are_mostly_wrong() -> None:
    """The judging set labels 5276 model solutions correct or not; arithmetic slips predict 'not'."""
    flagged = Counter()
    for row in _gsm8k("example_model_solutions.jsonl"):
        for key in ("6b_finetuning", "6b_verification", "175b_finetuning", "175b_verification"):
            candidate = row[key]
            if check_solution(candidate["solution"]).label == "inconsistent":
                flagged[candidate["is_correct"]] += 1
    # Measured: 211 flagged, 193 of them wrong (91%); many 'correct' ones really contain a slip.
    assert sum(flagged.values()) >= 150, flagged
    assert flagged[False] / sum(flagged.values()) >= 0.85, flagged


def test_sentinel_never_created() -> None:
    assert not os.path.exists(SENTINEL)
