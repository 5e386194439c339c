"""Lark grammars that only admit canonical FOLIO formulas, for guided (constrained) decoding.

Why the grammar looks the way it does (the first two points come from real runs, see DESIGN.md):

* No ``%ignore`` and no free whitespace: spacing is part of the lexemes (``" ∧ "``, ``"∀x ("``).
  llguidance stopped with "ParserTooComplex" on a grammar with ``%ignore " "`` and single-byte
  lexemes, and outlines only *warned* and returned unconstrained text; the tight form
  constrained SmolLM2 correctly. It also leaves the model exactly one spelling per formula.
* Depth-indexed rules (``f3`` may only contain ``f2``-level operands, ...), bounded ∧/∨ chains,
  bounded arity and bounded name length make the language finite, so a sampled formula must
  close its parentheses instead of running until max_tokens cuts it mid-formula.
* The language is exactly the output of ``to_str`` for formulas within the bounds (see
  ``grammar_depth`` for how depth is counted; names are limited to Latin letters, digits and the
  name punctuation), so everything it admits parses, and every canonical print of a formula
  within the bounds is admitted.
"""

from __future__ import annotations

from collections.abc import Sequence

from agentkit.errors import ConfigError
from agentkit.verifiers._fol_parse import _valid_name, _valid_var

# Name characters: ASCII letters/digits/_ plus Latin-1 and Latin Extended-A letters (FOLIO has
# Świątek), continuation-only characters ' ’ +, and . - only *between* two name characters:
# exactly what the parser's lexer reads as one name.
_L = "A-Za-z0-9_\u00c0-\u00d6\u00d8-\u00f6\u00f8-\u017f"
_NAME_CLASS = f"[{_L}]"
_CONT_CLASS = f"[{_L}'\u2019+]"


def _name_regex(max_len: int) -> str:
    return f"{_NAME_CLASS}(?:{_CONT_CLASS}|[.-]{_NAME_CLASS}){{0,{max_len - 1}}}"


def _valid_predicate(item: object) -> bool:
    if not (isinstance(item, tuple) and len(item) == 2):
        return False
    name, arity = item
    return _valid_name(name) and isinstance(arity, int) and not isinstance(arity, bool) and arity >= 1


def _lit(text: str) -> str:
    """A lark string literal (names are validated, so only quotes/backslashes need care)."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n") + '"'


def _formula_rules(
    predicates: Sequence[tuple[str, int]] | None,
    constants: Sequence[str] | None,
    variables: Sequence[str],
    max_depth: int,
    max_width: int,
    max_arity: int,
    max_name_len: int,
    negation: bool | None = None,
    quantified: bool = False,
    restrictors: bool = False,
    negatable: Sequence[str] | None = None,
) -> tuple[list[str], str]:
    """Rules for one formula; returns (lines, name of the top rule). ``negation`` False drops ¬;
    True adds a copy of the operand, chain and quantifier rules (``pn``, ``binn``, ``qn``, ...)
    whose every derivation holds a ¬ somewhere, and starts from it. ``restrictors`` gives ∀ and ∃
    their own body rules (``qba``, ``qbe``) without the ∧ chain and the → respectively. ``negatable``
    predicates are the only ones a ¬ may stand before (``natom``), and it stands before nothing else."""
    if max_depth < 0 or max_width < 2 or max_arity < 1 or max_name_len < 1:
        raise ConfigError(
            "fol_grammar needs max_depth >= 0, max_width >= 2, max_arity >= 1, max_name_len >= 1"
        )
    if not variables or not all(_valid_var(v) for v in variables):
        raise ConfigError(f"variables must be non-empty names of letters/digits/_: {variables!r}")
    variables = list(dict.fromkeys(variables))
    lines: list[str] = []

    # terms
    if constants is None:
        term = "NAME"
        lines.append(f"{term}: /{_name_regex(max_name_len)}/")
    else:
        bad = [c for c in constants if not _valid_name(c)]
        if bad:
            raise ConfigError(f"invalid constant names for the FOL grammar: {bad!r}")
        term = "term"
        alts = list(dict.fromkeys([*constants, *variables]))
        lines.append(f"{term}: " + " | ".join(_lit(a) for a in alts))

    # atoms
    atom = "atom"
    if predicates is None:
        pred = "PRED"
        lines.append(f"{pred}: /{_name_regex(max_name_len)}\\(/")
        lines.append(f'{atom}: {pred} {term} ("{", "}" {term})~0..{max_arity - 1} ")"')
    else:
        if not predicates:
            raise ConfigError("predicates must list at least one (name, arity) pair, or be None")
        bad_p = [x for x in predicates if not _valid_predicate(x)]
        if bad_p:
            raise ConfigError(f"invalid (predicate, arity) pairs for the FOL grammar: {bad_p!r}")
        atoms = {}
        for name, arity in dict.fromkeys((n, a) for n, a in predicates):
            args = " ".join([term] + [f'", " {term}'] * (arity - 1))
            atoms[name] = f'{_lit(name + "(")} {args} ")"'
        lines.append(f"{atom}: " + " | ".join(atoms.values()))
        if negatable:
            lines.append("natom: " + " | ".join(atoms[name] for name in dict.fromkeys(negatable)))

    if restrictors:
        lines.append("qall: " + " | ".join(_lit(f"∀{v} (") for v in variables))
        lines.append("qsome: " + " | ".join(_lit(f"∃{v} (") for v in variables))
    else:
        lines.append("qopen: " + " | ".join(_lit(f"{q}{v} (") for v in variables for q in "∀∃"))
    qpre = " | ".join(_lit(f"{q}{v} ") for v in variables for q in "∀∃")
    lines.append(f"qpre: {qpre}")

    def binary(d: int, without: str = "") -> str:
        op = f"p{d}"
        alts = {sym: f'{op} (" {sym} " {op})~1..{max_width - 1}' for sym in ("∧", "∨")}
        alts |= {sym: f'{op} " {sym} " {op}' for sym in ("⊕", "→", "↔")}
        return " | ".join(alt for sym, alt in alts.items() if sym != without)

    for d in range(max_depth + 1):
        # p{d}: an operand whose printed nesting is <= d (atoms and ¬ stand bare, others in parens)
        p_alts = [atom]
        f_alts = [atom]
        if d >= 1:
            if negation is not False:
                lines.append(f'neg{d}: "¬" natom' if negatable else f'neg{d}: "¬" p{d - 1}')
                p_alts.append(f"neg{d}")
                f_alts.append(f"neg{d}")
            p_alts.append(f'"(" bin{d - 1} ")"')
            q_alts = ([f'qall qba{d - 1} ")"', f'qsome qbe{d - 1} ")"'] if restrictors
                      else [f'qopen qb{d - 1} ")"'])
            if d >= 2:
                p_alts.append(f'"(" q{d - 1} ")"')
                q_alts.append(f"qpre q{d - 1}")
            lines.append(f"q{d}: " + " | ".join(q_alts))
        lines.append(f"p{d}: " + " | ".join(p_alts))
        lines.append(f"bin{d}: {binary(d)}")
        # qb{d}: a quantifier body that is not itself a quantifier
        if restrictors:  # ∀ restricts by →, ∃ by ∧: "∀x (A ∧ B)" and "∃x (A → B)" are the classic slips
            lines.append(f"qba{d}: " + " | ".join([*f_alts, binary(d, without="∧")]))
            lines.append(f"qbe{d}: " + " | ".join([*f_alts, binary(d, without="→")]))
        else:
            lines.append(f"qb{d}: " + " | ".join(f_alts + [f"bin{d}"]))
        if d >= 1:
            f_alts.append(f"q{d}")
        lines.append(f"f{d}: " + " | ".join(f_alts + [f"bin{d}"]))
    if negation:
        lines += _negated_rules(max_depth, max_width, restrictors)
        return lines, f"qn{max_depth}" if quantified else f"fn{max_depth}"
    return lines, f"q{max_depth}" if quantified else f"f{max_depth}"


def _negated_rules(max_depth: int, max_width: int, restrictors: bool = False) -> list[str]:
    """The "holds a ¬" copy of each rule from depth 1 up (depth 0 is atoms only): an operand, chain,
    quantifier or formula is negated when it is a ¬ or one of its parts is negated; the other parts
    stay free (``p``). A chain picks where its first negated operand stands, so its width bound holds."""
    lines: list[str] = []
    for d in range(1, max_depth + 1):
        pn = [f"neg{d}", *([f'"(" binn{d - 1} ")"'] if d >= 2 else []), *([f'"(" qn{d - 1} ")"'] if d >= 3 else [])]
        lines.append(f"pn{d}: " + " | ".join(pn))
        alts: dict[str, list[str]] = {}
        for sym in ("∧", "∨"):
            alts[sym] = [" ".join([*[f'p{d} " {sym} "'] * before, f"pn{d}", *[f'" {sym} " p{d}'] * after])
                         for before in range(max_width) for after in range(max(0, 1 - before), max_width - before)]
        for sym in ("⊕", "→", "↔"):
            alts[sym] = [f'pn{d} " {sym} " p{d}', f'p{d} " {sym} " pn{d}']
        lines.append(f"binn{d}: " + " | ".join(a for group in alts.values() for a in group))
        prefixed = f" | qpre qn{d - 1}" if d >= 3 else ""
        if restrictors:
            for rule, without in (("qban", "∧"), ("qben", "→")):
                kept = [a for sym, group in alts.items() if sym != without for a in group]
                lines.append(f"{rule}{d}: " + " | ".join([f"neg{d}", *kept]))
            if d >= 2:
                lines.append(f'qn{d}: qall qban{d - 1} ")" | qsome qben{d - 1} ")"' + prefixed)
        else:
            lines.append(f"qbn{d}: neg{d} | binn{d}")
            if d >= 2:
                lines.append(f'qn{d}: qopen qbn{d - 1} ")"' + prefixed)
        lines.append(f"fn{d}: neg{d} | binn{d}" + (f" | qn{d}" if d >= 2 else ""))
    return lines


def fol_grammar(
    predicates: Sequence[tuple[str, int]] | None = None,
    constants: Sequence[str] | None = None,
    max_depth: int = 5,
    *,
    variables: Sequence[str] = ("x", "y", "z", "w"),
    max_width: int = 8,
    max_arity: int = 4,
    max_name_len: int = 48,
    quantified: bool = False,
    negation: bool | None = None,
    restrictors: bool = False,
    negatable: Sequence[str] | None = None,
) -> str:
    """A Lark grammar (``start:`` rule) admitting one canonical FOLIO formula.

    ``predicates`` (name, arity) pairs and ``constants`` restrict the vocabulary (and fix each
    predicate's arity) when the caller knows it; ``None`` admits any well-formed name. Bounds:
    ``max_depth`` nesting levels as :func:`grammar_depth` counts them (FOLIO's gold formulas need
    at most 5), ``max_width`` operands per ∧/∨ chain, ``max_arity`` arguments per predicate,
    ``max_name_len`` characters per name. ``quantified`` admits only formulas that begin with a
    quantifier: with one variable, every occurrence of it is then bound (an unbound name reads as a
    constant, so a sentence with no named individual would otherwise be about one called "x").
    ``negation``: None admits ¬ anywhere, False nowhere, True requires at least one (how a
    sentence's wording can decide its formula's polarity). ``restrictors``: a ∀'s body may not be a
    conjunction and an ∃'s may not be an implication ("As are Bs" is ∀x (A(x) → B(x)), not
    ∀x (A(x) ∧ B(x)), which says everything is both; ∃x (A(x) → B(x)) holds of anything not an A).
    ``negatable``: the predicates a ¬ may stand before, directly; a ¬ goes nowhere else (an empty
    list admits no ¬, like ``negation=False``).
    The result is accepted by llguidance (outlines' CFG backend, vLLM's ``structured_outputs``
    ``grammar``) and by the ``lark`` package.
    """
    if quantified and max_depth < 1:
        raise ConfigError("fol_grammar(quantified=True) needs max_depth >= 1 (a quantifier is one level)")
    if negation and max_depth < 1 + quantified:
        raise ConfigError(f"fol_grammar(negation=True{', quantified=True' if quantified else ''}) needs "
                          f"max_depth >= {1 + quantified} (a ¬ is one level, a quantifier another)")
    if negatable is not None:
        known = {name for name, _ in predicates or ()}
        if predicates is None or not set(negatable) <= known:
            raise ConfigError(f"fol_grammar(negatable={list(negatable)!r}) names predicates the grammar does not "
                              f"list ({sorted(set(negatable) - known)}); pass them in predicates too")
        if not negatable:
            if negation:
                raise ConfigError("fol_grammar(negation=True, negatable=[]): a ¬ is required and may stand nowhere")
            negation = False
    lines, top = _formula_rules(
        predicates, constants, variables, max_depth, max_width, max_arity, max_name_len,
        negation=negation, quantified=quantified, restrictors=restrictors, negatable=negatable,
    )
    return "\n".join([f"start: {top}", *lines]) + "\n"
