"""FOLIO first-order logic: the AST, a bounded recursive-descent parser and the canonical printer.

Formulas come from models and from hand-annotated datasets, so the parser is written for hostile
and messy text: it never evaluates anything, it bounds input length and nesting depth (a clean
:class:`FOLSyntaxError` instead of ``RecursionError``), and it reports the offending token with
its 0-based character offset so a caller can show the model exactly where it went wrong.

Syntax (FOLIO's unicode notation, plus the ASCII spellings of LINC's Prover9 format)::

    ¬ -            negation                ∀x ...  all x. ...     universal
    ∧ & ^          conjunction (n-ary)     ∃x ...  exists x. ...  existential
    ∨ |            disjunction (n-ary)     ⊕              exclusive or (Prover9 has none)
    → ->           implication             ↔ ⟷ <->        biconditional

Binding, tightest first: ¬, ∧, ∨, ⊕, →, ↔. ∧/∨ chains are flat (n-ary); ⊕ and ↔ associate to
the left (both are associative, so this only fixes the tree shape); → associates to the right.
Quantifier scope follows how FOLIO's annotators write it (checked on every gold formula where
the two readings differ): when the variable is followed by ``(``, that parenthesised group is the
scope, so ``∀x (P(x)) ∧ ∃y (Q(y))`` is a conjunction of two quantified formulas and
``∀x ∀y (∃z (K(x, z)) → C(x, y))`` keeps ∃z inside the antecedent; otherwise the scope extends as
far right as possible, as in NLTK/Prover9: ``∀x P(x) → Q(x)`` is ``∀x (P(x) → Q(x))``. ``^`` is
read as ∧ because that is what it means in FOLIO's one use of it. An optional trailing ``.`` (the Prover9
clause terminator) is accepted.

Terms are names only (FOLIO has no function symbols). A name is a *variable* iff an enclosing
quantifier binds it, otherwise a *constant* (case says nothing: FOLIO has the constant ``a`` in
``GetGrade(zhang, a)``, the constant ``Jess`` and the predicate ``team``). Names may contain
letters of any script (``Świątek``), digits, ``_``, apostrophes (``'`` and ``’``), ``+`` (``c++``),
and ``.``/``-`` between two name characters (``1.3billion``, ``l-2021``, ``Anti-abortion``).
Predicate applications are ``Name(t1, ..., tn)`` with n ≥ 1; a space before ``(`` is tolerated.
The same predicate name may be used with different arities; they are different predicates (the
prover keys predicates by name *and* arity), because that is the only sound reading of such
annotations and rejecting them would reject valid FOLIO rows.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NoReturn

from agentkit.errors import InputError

__all__ = [
    "MAX_CHARS",
    "MAX_DEPTH",
    "FOLSyntaxError",
    "Var",
    "Const",
    "Term",
    "Atom",
    "Not",
    "And",
    "Or",
    "Xor",
    "Implies",
    "Iff",
    "ForAll",
    "Exists",
    "Formula",
    "parse",
    "to_str",
    "grammar_depth",
]

MAX_CHARS = 20_000
"""Longest formula accepted; FOLIO's longest gold formula is a few hundred characters."""

MAX_DEPTH = 100
"""Deepest AST accepted, counted in connectives and quantifiers (FOLIO's gold needs < 10)."""

# Parser recursion guard. The canonical print of an AST of depth d parses within 3·d + 1 levels,
# so 4·MAX_DEPTH keeps print→parse round trips inside the limit while staying far below
# Python's recursion limit (~1000 frames; one frame per level here).
_MAX_RECURSION = 4 * MAX_DEPTH

_EXCERPT = 120


class FOLSyntaxError(InputError):
    """A formula could not be parsed; nothing in it was executed.

    ``position`` is the 0-based character offset of the problem, ``token`` the offending text
    (empty at end of input) and ``formula`` the whole input, so callers (and a retrying model)
    can point at the exact spot.
    """

    def __init__(self, problem: str, *, position: int, token: str, formula: str, hint: str = "") -> None:
        self.problem = problem
        self.position = position
        self.token = token
        self.formula = formula
        self.hint = hint
        message = f"{problem} at position {position} in {_excerpt(formula, position)}"
        super().__init__(f"{message}: {hint}" if hint else message)


def _excerpt(formula: str, position: int) -> str:
    """Quote the formula, or a window around ``position`` when it is too long to show whole."""
    if len(formula) <= _EXCERPT:
        return _quote(formula)
    start = max(0, position - _EXCERPT // 2)
    end = min(len(formula), start + _EXCERPT)
    return f"{_quote(formula[start:end])} (characters {start}-{end} of {len(formula)})"


def _quote(text: str) -> str:
    # repr-like escaping of control characters but keeping non-ASCII letters readable
    escaped = "".join(c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text)
    return '"' + escaped.replace('"', '\\"') + '"'


# ---------------------------------------------------------------------------------------------
# AST


def _is_name_char(c: str) -> bool:
    return c.isalnum() or c == "_"


def _valid_name(name: object) -> bool:
    """True iff the lexer would read ``name`` back as exactly one name token."""
    if not isinstance(name, str) or not name or not _is_name_char(name[0]):
        return False
    for i, c in enumerate(name[1:], start=1):
        if _is_name_char(c) or c in _NAME_EXTRA:
            continue
        if c in _NAME_JOIN and i + 1 < len(name) and _is_name_char(name[i + 1]):
            continue
        return False
    return True


def _valid_var(name: object) -> bool:
    return isinstance(name, str) and bool(name) and all(_is_name_char(c) for c in name)


_NAME_EXTRA = "'’+"
_NAME_JOIN = ".-"


@dataclass(frozen=True, slots=True)
class Var:
    """A variable occurrence; only produced for names bound by an enclosing quantifier."""

    name: str

    def __post_init__(self) -> None:
        if not _valid_var(self.name):
            raise ValueError(f"invalid variable name {self.name!r}: use letters, digits and _")


@dataclass(frozen=True, slots=True)
class Const:
    """A constant (any name not bound by a quantifier)."""

    name: str

    def __post_init__(self) -> None:
        if not _valid_name(self.name):
            raise ValueError(f"invalid constant name {self.name!r}")


Term = Var | Const


@dataclass(frozen=True, slots=True)
class Atom:
    pred: str
    args: tuple[Term, ...]

    def __post_init__(self) -> None:
        if not _valid_name(self.pred):
            raise ValueError(f"invalid predicate name {self.pred!r}")
        if not self.args or not all(isinstance(a, (Var, Const)) for a in self.args):
            raise ValueError(f"predicate {self.pred!r} needs one or more Var/Const arguments")


@dataclass(frozen=True, slots=True)
class Not:
    arg: Formula


@dataclass(frozen=True, slots=True)
class And:
    """n-ary so that FOLIO's long conjunction chains do not become deep trees."""

    args: tuple[Formula, ...]

    def __post_init__(self) -> None:
        if len(self.args) < 2:
            raise ValueError("And needs at least two arguments")


@dataclass(frozen=True, slots=True)
class Or:
    args: tuple[Formula, ...]

    def __post_init__(self) -> None:
        if len(self.args) < 2:
            raise ValueError("Or needs at least two arguments")


@dataclass(frozen=True, slots=True)
class Xor:
    left: Formula
    right: Formula


@dataclass(frozen=True, slots=True)
class Implies:
    left: Formula
    right: Formula


@dataclass(frozen=True, slots=True)
class Iff:
    left: Formula
    right: Formula


@dataclass(frozen=True, slots=True)
class ForAll:
    var: str
    body: Formula

    def __post_init__(self) -> None:
        if not _valid_var(self.var):
            raise ValueError(f"invalid variable name {self.var!r}: use letters, digits and _")


@dataclass(frozen=True, slots=True)
class Exists:
    var: str
    body: Formula

    def __post_init__(self) -> None:
        if not _valid_var(self.var):
            raise ValueError(f"invalid variable name {self.var!r}: use letters, digits and _")


Formula = Atom | Not | And | Or | Xor | Implies | Iff | ForAll | Exists

_BINARY = (And, Or, Xor, Implies, Iff)
_QUANT = (ForAll, Exists)


def grammar_depth(f: Formula) -> int:
    """Nesting depth as ``fol_grammar(max_depth=...)`` counts it in the canonical print.

    An atom has depth 0; ¬, a parenthesised operand and a quantifier each add one level.
    """
    if isinstance(f, Atom):
        return 0
    if isinstance(f, Not):
        return 1 + _operand_depth(f.arg)
    if isinstance(f, _QUANT):
        return 1 + grammar_depth(f.body)
    return max(_operand_depth(a) for a in _children(f))


def _operand_depth(f: Formula) -> int:
    # atoms and negations stand bare as operands; anything else is wrapped in one pair of parens
    if isinstance(f, (Atom, Not)):
        return grammar_depth(f)
    return 1 + grammar_depth(f)


def _children(f: Formula) -> tuple[Formula, ...]:
    if isinstance(f, (And, Or)):
        return f.args
    if isinstance(f, (Xor, Implies, Iff)):
        return (f.left, f.right)
    if isinstance(f, Not):
        return (f.arg,)
    if isinstance(f, _QUANT):
        return (f.body,)
    return ()


# ---------------------------------------------------------------------------------------------
# Printer

_SYMBOL = {And: " ∧ ", Or: " ∨ ", Xor: " ⊕ ", Implies: " → ", Iff: " ↔ "}


def to_str(f: Formula) -> str:
    """Print ``f`` in canonical FOLIO syntax; ``parse(to_str(f)) == f`` for every valid AST.

    Canonical form never relies on precedence: every operand that is not an atom or a negation
    is parenthesised, quantifier bodies are always parenthesised (``∀x (P(x))``) except when the
    body is itself a quantifier (``∀x ∃y (R(x, y))``). The guided-decoding grammar admits exactly
    this layout, so models are steered to one spelling per formula.
    """
    if isinstance(f, Atom):
        return f"{f.pred}({', '.join(a.name for a in f.args)})"
    if isinstance(f, Not):
        return "¬" + _operand(f.arg)
    if isinstance(f, _QUANT):
        sym = "∀" if isinstance(f, ForAll) else "∃"
        if isinstance(f.body, _QUANT):
            return f"{sym}{f.var} {to_str(f.body)}"
        return f"{sym}{f.var} ({to_str(f.body)})"
    if isinstance(f, _BINARY):
        return _SYMBOL[type(f)].join(_operand(a) for a in _children(f))
    raise TypeError(f"not a formula: {type(f).__name__}")


def _operand(f: Formula) -> str:
    text = to_str(f)
    return text if isinstance(f, (Atom, Not)) else f"({text})"


# ---------------------------------------------------------------------------------------------
# Lexer

_OPERATORS: tuple[tuple[str, str], ...] = (
    # longest spellings first so "<->" is not read as "<" and "->"
    ("<->", "IFF"),
    ("->", "IMP"),
    ("¬", "NOT"),
    ("-", "NOT"),
    ("∧", "AND"),
    ("&", "AND"),
    ("^", "AND"),
    ("∨", "OR"),
    ("|", "OR"),
    ("⊕", "XOR"),
    ("→", "IMP"),
    ("↔", "IFF"),
    ("⟷", "IFF"),
    ("∀", "FORALL"),
    ("∃", "EXISTS"),
    ("(", "LP"),
    (")", "RP"),
    (",", "COMMA"),
    (".", "DOT"),
)


@dataclass(frozen=True, slots=True)
class _Token:
    kind: str
    text: str
    start: int
    end: int


def _lex(text: str, pos: int) -> _Token:
    n = len(text)
    while pos < n and text[pos].isspace():
        pos += 1
    if pos >= n:
        return _Token("EOF", "", n, n)
    c = text[pos]
    if _is_name_char(c):
        end = pos + 1
        while end < n:
            ch = text[end]
            if _is_name_char(ch) or ch in _NAME_EXTRA:
                end += 1
            elif ch in _NAME_JOIN and end + 1 < n and _is_name_char(text[end + 1]):
                end += 2
            else:
                break
        return _Token("NAME", text[pos:end], pos, end)
    for spelling, kind in _OPERATORS:
        if text.startswith(spelling, pos):
            return _Token(kind, spelling, pos, pos + len(spelling))
    return _Token("CHAR", c, pos, pos + 1)


# ---------------------------------------------------------------------------------------------
# Parser

# binary operator -> (precedence, right associative)
_PREC = {"IFF": (1, False), "IMP": (2, True), "XOR": (3, False), "OR": (4, False), "AND": (5, False)}
_QUANT_WORDS = {"all": "FORALL", "exists": "EXISTS"}


def parse(text: str) -> Formula:
    """Parse one formula; raise :class:`FOLSyntaxError` (never anything else) if it is malformed."""
    if not isinstance(text, str):
        raise FOLSyntaxError(
            f"formula must be a string, not {type(text).__name__}",
            position=0,
            token="",
            formula=repr(text)[:200],
        )
    if len(text) > MAX_CHARS:
        raise FOLSyntaxError(
            f"formula too long ({len(text)} characters, the limit is {MAX_CHARS}): "
            f"cut at {_show(text[MAX_CHARS : MAX_CHARS + 10])}",
            position=MAX_CHARS,
            token=text[MAX_CHARS : MAX_CHARS + 10],
            formula=text,
        )
    try:
        return _Parser(text).formula()
    except RecursionError:  # defensive: MAX_DEPTH should make this unreachable
        raise FOLSyntaxError("formula nested too deeply", position=0, token=text[:10], formula=text) from None


class _Parser:
    """Precedence climbing over a lazily lexed token stream.

    Lexing is lazy because one spot is context dependent: right after a quantifier the variable
    is letters/digits only, so ``all x.P(x)`` splits at the dot although ``mr.smith`` is a name.
    """

    def __init__(self, text: str) -> None:
        self.text = text
        self.pos = 0
        self._tok: _Token | None = None
        self._depth = 0
        self._bound: list[str] = []

    # -- tokens --------------------------------------------------------------------------------

    def peek(self) -> _Token:
        if self._tok is None:
            self._tok = _lex(self.text, self.pos)
        return self._tok

    def advance(self) -> _Token:
        tok = self.peek()
        self.pos = tok.end
        self._tok = None
        return tok

    def expect(self, kind: str, hint: str) -> _Token:
        tok = self.peek()
        if tok.kind != kind:
            self.fail(tok, hint)
        return self.advance()

    def fail(self, tok: _Token, hint: str | None = None) -> NoReturn:
        problem = "unexpected end of formula" if tok.kind == "EOF" else f"unexpected {_show(tok.text)}"
        raise FOLSyntaxError(problem, position=tok.start, token=tok.text, formula=self.text, hint=hint or "")

    def enter(self, tok: _Token) -> None:
        """Count one level of parser recursion (every ¬, quantifier, '(' and operand).

        This bounds the Python stack for every input shape, including ``((((P(a))))`` whose
        parentheses add no AST depth; the AST depth limit (``deeper``) is separate and smaller,
        so that the canonical print of anything accepted parses again within this limit.
        """
        self._depth += 1
        if self._depth > _MAX_RECURSION:
            raise FOLSyntaxError(
                f"{_show(tok.text)} nests deeper than the parser's limit of {_MAX_RECURSION} levels",
                position=tok.start,
                token=tok.text,
                formula=self.text,
            )

    # -- grammar -------------------------------------------------------------------------------

    def formula(self) -> Formula:
        if self.peek().kind == "EOF":
            raise FOLSyntaxError("empty formula", position=0, token="", formula=self.text)
        f, _ = self.expr(1)
        if self.peek().kind == "DOT":  # Prover9's clause terminator
            self.advance()
        tok = self.peek()
        if tok.kind != "EOF":
            self.fail(tok, _after_complete(tok))
        return f

    # expr/unary return (formula, AST depth) so the depth limit is checked where it is exceeded

    def expr(self, min_prec: int) -> tuple[Formula, int]:
        self.enter(self.peek())
        left, d = self.unary()
        while True:
            tok = self.peek()
            info = _PREC.get(tok.kind)
            if info is None or info[0] < min_prec:
                break
            prec, right_assoc = info
            self.advance()
            if tok.kind in ("AND", "OR"):
                first, d1 = self.expr(prec + 1)
                items, d = [left, first], max(d, d1)
                while self.peek().kind == tok.kind:
                    self.advance()
                    item, d1 = self.expr(prec + 1)
                    items.append(item)
                    d = max(d, d1)
                left, d = (And if tok.kind == "AND" else Or)(tuple(items)), self.deeper(d, tok)
                continue
            right, d1 = self.expr(prec if right_assoc else prec + 1)
            node = {"XOR": Xor, "IMP": Implies, "IFF": Iff}[tok.kind](left, right)
            left, d = node, self.deeper(max(d, d1), tok)
        self._depth -= 1
        return left, d

    def unary(self) -> tuple[Formula, int]:
        tok = self.peek()
        kind = tok.kind
        if kind == "NAME" and tok.text in _QUANT_WORDS and self._next_char(tok.end) not in ("(", ""):
            kind = _QUANT_WORDS[tok.text]
        if kind == "NOT":
            self.enter(self.advance())
            arg, d = self.unary()
            f: Formula = Not(arg)
            d = self.deeper(d, tok)
        elif kind in ("FORALL", "EXISTS"):
            self.enter(self.advance())
            var = self.variable()
            self._bound.append(var)
            # "∀x (...)": the parenthesised group is the scope; "∀x P(x) → Q(x)": as far as possible
            body, d = self.unary() if self.peek().kind == "LP" else self.expr(1)
            self._bound.pop()
            f = ForAll(var, body) if kind == "FORALL" else Exists(var, body)
            d = self.deeper(d, tok)
        elif kind == "LP":
            self.enter(self.advance())
            f, d = self.expr(1)
            self.expect("RP", f"expected ')' to close the '(' at position {tok.start}")
        elif kind == "NAME":
            return self.atom(), 0
        else:
            self.fail(tok, "expected a formula")
        self._depth -= 1
        return f, d

    def deeper(self, depth: int, tok: _Token) -> int:
        """Depth of a node over children of ``depth``; the connective ``tok`` is blamed if too deep."""
        if depth + 1 > MAX_DEPTH:
            raise FOLSyntaxError(
                f"{_show(tok.text)} nests the formula deeper than the limit of {MAX_DEPTH} connectives",
                position=tok.start,
                token=tok.text,
                formula=self.text,
            )
        return depth + 1

    def variable(self) -> str:
        """Read the variable after a quantifier, and Prover9's optional '.' after it."""
        n = len(self.text)
        pos = self.pos
        while pos < n and self.text[pos].isspace():
            pos += 1
        end = pos
        while end < n and _is_name_char(self.text[end]):
            end += 1
        if end == pos:
            self.fail(_lex(self.text, pos), "expected a variable after the quantifier")
        var = self.text[pos:end]
        if end < n and self.text[end] == ".":
            end += 1
        self.pos = end
        self._tok = None
        return var

    def atom(self) -> Atom:
        name = self.advance()
        if self.peek().kind != "LP":
            self.fail(
                self.peek(),
                f"expected '(' after predicate {_show(name.text)}; bare propositions are not supported",
            )
        self.advance()
        args: list[Term] = [self.term()]
        while self.peek().kind == "COMMA":
            self.advance()
            args.append(self.term())
        self.expect("RP", f"expected ',' or ')' in the arguments of {_show(name.text)}")
        return Atom(name.text, tuple(args))

    def term(self) -> Term:
        tok = self.peek()
        if tok.kind != "NAME":
            self.fail(tok, "expected a constant or variable")
        self.advance()
        if self.peek().kind == "LP":
            self.fail(self.peek(), f"function terms such as {tok.text}(...) are not supported")
        if tok.text in self._bound:
            return Var(tok.text)
        return Const(tok.text)

    def _next_char(self, pos: int) -> str:
        n = len(self.text)
        while pos < n and self.text[pos].isspace():
            pos += 1
        return self.text[pos] if pos < n else ""


def _after_complete(tok: _Token) -> str:
    if tok.kind == "RP":
        return "no matching '('"
    if tok.kind in ("NAME", "LP", "NOT", "FORALL", "EXISTS"):
        return "expected an operator such as ∧ or → between formulas"
    return "expected an operator or the end of the formula"


def _show(token: str) -> str:
    if token == "":
        return "end of formula"
    if "'" in token:
        return _quote(token)
    return f"'{token}'"
