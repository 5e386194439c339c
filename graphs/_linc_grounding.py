"""LINC's vocabulary step: the layout it is written in, and the grammar that grounds it in the input.

The per-sentence variant (``_linc_sentences``) first has the model name the problem's predicates
(with arity) and constants, written as two lines::

    PREDICATES: Student(1), StudiesHard(1), Passes(2)
    CONSTANTS: mia, exam

The guided grammar decides which names may appear there. Open, any well-formed name. *Grounded*,
only names built from the input's own words, because a 135M parser was seen inventing predicates
("Jumbouses", "Yellus") from no word of the problem:

* predicates: CamelCase joins of one to three consecutive words of one sentence (articles dropped,
  so "passes the exam" gives ``PassesExam``), neither end a function word ("is", "not", "if", ...),
  with singular and plural variants of the last word (``Jompus`` / ``Jompuses``);
  A span with a clause word inside ("is", "not", "and", ...) is a clause, not a name, and is skipped;
* constants: lowercased names (runs of up to three capitalised words: "Max" -> ``max``, "Lumina APV"
  -> ``luminaAPV``; a first word followed by "are" is a plural noun, not a name) and the noun after
  "the" ("the bear" -> ``bear``).

Each sentence's grammar then admits exactly the declared vocabulary (``fol_grammar(predicates=...,
constants=...)``), so a grounded vocabulary grounds every formula. The grammar is one per input
(compiled once per input by the backend's grammar cache) and bounded in length; an input that gives
no candidate, or too many for a grammar of sensible size, is not grounded: :func:`ground` says why
and the caller falls back to the open grammar.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence

from pydantic import BaseModel, Field

from agentkit.errors import InputError
from agentkit.verifiers.fol import (
    And,
    Atom,
    Const,
    Exists,
    ForAll,
    Formula,
    Iff,
    Implies,
    Not,
    Or,
    Xor,
    parse,
)

#: words never at either end of a predicate name, and never a constant
FUNCTION_WORDS = frozenset(["a", "an", "the", "is", "are", "was", "were", "be", "been", "being", "am", "do", "does", "did", "not", "no", "nor", "if", "then", "and", "or", "but", "either", "neither", "both", "all", "every", "each", "some", "any", "none", "something", "someone", "somebody", "everything", "everyone", "everybody", "anything", "anyone", "anybody", "nothing", "nobody", "it", "its", "they", "them", "their", "he", "she", "his", "her", "him", "we", "us", "you", "i", "this", "that", "these", "those", "who", "whom", "whose", "which", "what", "when", "where", "there", "of", "in", "on", "at", "to", "by", "for", "with", "from", "as", "than", "so", "also", "only", "can", "could", "will", "would", "should", "may", "might", "must", "shall", "into", "onto", "about"])
ARTICLES = frozenset({"a", "an", "the"})
PRONOUNS = frozenset(["he", "she", "it", "they", "him", "her", "them", "his", "its", "their", "hers", "theirs",
                      "himself", "herself", "itself", "themselves"])
#: words that make a span a clause rather than a name: never inside a predicate name either
CLAUSE_WORDS = frozenset(["is", "are", "was", "were", "be", "been", "am", "not", "no", "nor", "if", "then", "and", "or", "but", "every", "each", "all", "some"])
#: a capitalised first word followed by one of these is a plural noun ("Jompuses are"), not a name
_PLURAL_VERBS = frozenset({"are", "were", "do", "have"})
#: a sentence with one of these says "not": under ``polarity`` its formula must hold a ¬ (and one
#: without must not); "isn't", "doesn't" and the like count through their "n't"
_NEGATION = re.compile(r"\b(?:not|no|never|none|nobody|nothing|neither|nor|cannot)\b|n['’]t\b", re.I)
#: a pronoun in a sentence with one of these refers to the quantified thing, not to a named one
_QUANTIFIER_WORDS = frozenset(["something", "someone", "somebody", "everything", "everyone", "everybody", "anything",
                               "anyone", "anybody", "nothing", "nobody", "all", "every", "each", "any", "some"])
VARIABLES = ("x", "y", "z", "w")  # the sentence grammar's variables: never constants
MAX_ARITY = 3
MAX_PREDICATE_CANDIDATES = 2000
MAX_CONSTANT_CANDIDATES = 400
_WORD = re.compile(r"[^\W_]+")
#: "n't" and the word it is glued to ("doesn't" -> "does not"; "can't", "won't" -> "can not", "will not"),
#: so a name never holds a "Doesn" or a "T" ("doesn't chase the mouse" names ChaseMouse)
_CONTRACTED_NOT = re.compile(r"\b(\w+?)n['’]t\b", re.I)
_CONTRACTED_STEMS = {"ca": "can", "wo": "will", "sha": "shall"}
_OPEN_PREDICATE = "/[A-Z][A-Za-z0-9]{0,39}\\(/"
_OPEN_CONSTANT = "/[a-z][A-Za-z0-9]{0,39}/"


class Vocabulary(BaseModel):
    """One sample's vocabulary: (predicate, arity) pairs and constants, in the order declared."""

    predicates: list[tuple[str, int]] = Field(min_length=1)
    constants: list[str] = Field(default_factory=list)
    #: names made of the words after the sentence's negation word (``words_vocabularies``): where
    #: ``negation_scope`` lets a ¬ stand
    negatable: list[str] = Field(default_factory=list)


class Grounding(BaseModel):
    """The names the vocabulary step may use for one input; ``None`` lists mean the open grammar
    (``fallback`` says why)."""

    predicates: list[str] | None = None
    constants: list[str] | None = None
    fallback: str | None = None

    @property
    def grounded(self) -> bool:
        return self.predicates is not None


def _tokens(sentence: str) -> list[str]:
    """The sentence's words, with every "n't" spelt out as "not"."""
    return _WORD.findall(_CONTRACTED_NOT.sub(
        lambda m: _CONTRACTED_STEMS.get(m.group(1).lower(), m.group(1)) + " not", sentence))


def _words(sentence: str) -> list[str]:
    return [w for w in _tokens(sentence) if w.lower() not in ARTICLES]


def says_not(sentence: str) -> bool:
    """Whether the sentence has a negation word (``polarity``: its formula then needs a ¬)."""
    return _NEGATION.search(sentence) is not None


def _negation_scope(sentence: str) -> str:
    """What follows the sentence's first negation word ("" without one): English negates what comes
    after "not" ("Jompuses are not shy" denies shyness, not jompus-hood)."""
    found = _NEGATION.search(sentence)
    return sentence[found.end():] if found else ""


def _camel(words: Sequence[str]) -> str:
    return "".join(w[:1].upper() + w[1:] for w in words)


def number_variants(word: str) -> list[str]:
    """``word`` and its likely singular or plural (a few English rules; extra guesses cost nothing)."""
    low = word.lower()
    if low.endswith("ies") and len(word) > 4:
        return [word, word[:-3] + "y"]
    if low.endswith(("ses", "xes", "zes", "ches", "shes")):
        return [word, word[:-1], word[:-2]]  # horses -> horse, jompuses -> jompus
    if low.endswith("s") and not low.endswith(("ss", "us", "is")) and len(word) > 3:
        return [word, word[:-1]]
    if low.endswith("y") and len(word) > 2 and low[-2] not in "aeiou":
        return [word, word[:-1] + "ies"]
    if low.endswith(("s", "x", "z", "ch", "sh")):
        return [word, word + "es"]
    return [word, word + "s"]


def _name_spans(sentence: str, max_words: int) -> Iterable[list[str]]:
    """Runs of 1..max_words consecutive words that can name a predicate (see the module docstring)."""
    words = _words(sentence)
    for i in range(len(words)):
        for j in range(i + 1, min(i + max_words, len(words)) + 1):
            span = words[i:j]
            if not (any(len(w) < 2 or w.lower() in FUNCTION_WORDS for w in (span[0], span[-1])) or
                    any(w.lower() in CLAUSE_WORDS for w in span)):
                yield span


def predicate_candidates(sentences: Iterable[str], max_words: int = 3) -> list[str]:
    """CamelCase names of 1..max_words consecutive words of one sentence, in first-seen order."""
    out: dict[str, None] = {}
    for sentence in sentences:
        for span in _name_spans(sentence, max_words):
            for last in number_variants(span[-1]):
                out.setdefault(_camel([*span[:-1], last]), None)
    return list(out)


def words_vocabularies(sentences: Sequence[str], max_words: int = 3) -> list[Vocabulary | None]:
    """Each sentence's own names, for the per-sentence grammar of ``translation="words"``.

    Predicates are the sentence's word spans (as :func:`predicate_candidates`), all unary: a relation
    to a named thing folds the thing into the name ("chases the mouse" -> ``ChasesMouse(x)``), which
    keeps every name made of the sentence's words. A word is spelt as the shortest of its number
    variants that the problem uses, so "Jompuses are shy" and "Max is a jompus" share ``Jompus``
    (every word of a name, so "performs in school" and "perform in school" share ``PerformInSchool``):
    a name is the same in every sentence that says it, and differs where the words differ, which is
    what stops a small parser from writing one formula for every sentence. Constants are the
    sentence's own (:func:`constant_candidates`), plus the problem's when a pronoun may refer to one
    (a pronoun in a sentence that quantifies, "if something is red then it is big", refers to that);
    a sentence with neither gets none, so "Every cat is furry" cannot become ``Furry(tom)``.
    ``None`` marks a sentence without a word a name can be built from. ``negatable`` lists the names
    made of words after the sentence's negation word."""
    used = {w.lower() for s in sentences for w in _tokens(s)}
    everyone = constant_candidates(sentences)

    def spelt(span: Sequence[str]) -> str:
        return _camel([min((v for v in number_variants(w) if v.lower() in used), key=len) for w in span])

    out: list[Vocabulary | None] = []
    for sentence in sentences:
        own = constant_candidates([sentence])
        individuals = {c[:1].upper() + c[1:] for c in own}  # "Max is sour": max is a constant, not a predicate
        names: dict[str, None] = {}
        for span in _name_spans(sentence, max_words):
            if _camel(span) not in individuals:
                names.setdefault(spelt(span), None)
        scoped = {spelt(span) for span in _name_spans(_negation_scope(sentence), max_words)}
        lowered = {w.lower() for w in _tokens(sentence)}
        if lowered & PRONOUNS and not lowered & _QUANTIFIER_WORDS:  # "if something is red, it is big": no one named
            own = list(dict.fromkeys([*own, *everyone]))
        out.append(Vocabulary(predicates=[(n, 1) for n in names], constants=own,
                              negatable=[n for n in names if n in scoped]) if names else None)
    return out


def constant_candidates(sentences: Iterable[str]) -> list[str]:
    """Lowercased names (runs of capitalised words) and the noun phrases after "the"."""
    out: dict[str, None] = {}

    def add(words: Sequence[str]) -> None:
        if words and all(len(w) > 1 and w.lower() not in FUNCTION_WORDS for w in words):
            name = words[0].lower() + "".join(w[:1].upper() + w[1:] for w in words[1:])
            if name not in VARIABLES and name != "none":
                out.setdefault(name, None)

    for sentence in sentences:
        raw = _tokens(sentence)
        for i, word in enumerate(raw):
            run = raw[i : i + 3]
            if i == 0 and len(raw) > 1 and raw[1].lower() in _PLURAL_VERBS:
                run = []
            caps = 0
            while caps < len(run) and run[caps][:1].isupper():
                caps += 1
            for n in range(1, caps + 1):
                add(run[:n])
            if word.lower() == "the":
                add(raw[i + 1 : i + 2])
    return list(out)


def ground(sentences: Sequence[str]) -> Grounding:
    """The grounded names for these sentences, or the open grammar with the reason it is needed."""
    predicates, constants = predicate_candidates(sentences), constant_candidates(sentences)
    if not predicates:
        return Grounding(fallback="no sentence has a word a predicate name can be built from")
    if len(predicates) > MAX_PREDICATE_CANDIDATES or len(constants) > MAX_CONSTANT_CANDIDATES:
        return Grounding(fallback=f"{len(predicates)} predicate and {len(constants)} constant candidates exceed "
                                  f"the grammar's bounds ({MAX_PREDICATE_CANDIDATES}, {MAX_CONSTANT_CANDIDATES})")
    return Grounding(predicates=predicates, constants=constants)


def vocabulary_grammar(grounding: Grounding, *, max_predicates: int, max_constants: int,
                       min_predicates: int = 1) -> str:
    """Lark grammar of the two vocabulary lines: ``min_predicates``..``max_predicates`` predicates and
    at most ``max_constants`` constants."""
    if not 1 <= min_predicates <= max_predicates:
        raise ValueError(f"need 1 <= min_predicates ({min_predicates}) <= max_predicates ({max_predicates})")
    if grounding.predicates is None:
        pred = _OPEN_PREDICATE
    else:
        pred = " | ".join(json.dumps(p + "(", ensure_ascii=False) for p in grounding.predicates)
    if grounding.constants is None:
        const = _OPEN_CONSTANT
    else:
        const = " | ".join(json.dumps(c, ensure_ascii=False) for c in grounding.constants) or None
    arity = " | ".join(f'"{a}"' for a in range(1, MAX_ARITY + 1))
    lines = [
        'start: "PREDICATES: " decls0 "\\nCONSTANTS: " constants',
        *_bounded_list("decls", "decl", min_predicates, max_predicates),
        'decl: pname arity ")"',
        f"pname: {pred}",
        f"arity: {arity}",
    ]
    if const is None:  # nothing in the input reads as a name
        lines.append('constants: "none"')
    else:
        lines += ['constants: "none" | consts0', *_bounded_list("consts", "cname", 1, max_constants), f"cname: {const}"]
    return "\n".join(lines) + "\n"


def _bounded_list(rule: str, item: str, least: int, most: int) -> list[str]:
    """``rule0`` admits least..most ``item``s joined by ", ", as a chain of rules (linear in ``most``:
    lark expands ``~a..b`` repetitions into every length, which made a 48-name list slow to build)."""
    lines = []
    for i in range(most):
        tail = "" if i == most - 1 else (f' ", " {rule}{i + 1}' if i + 1 < least else f' (", " {rule}{i + 1})?')
        lines.append(f"{rule}{i}: {item}{tail}")
    return lines


def render_vocabulary(vocabulary: Vocabulary) -> str:
    predicates = ", ".join(f"{name}({arity})" for name, arity in vocabulary.predicates)
    return f"PREDICATES: {predicates}\nCONSTANTS: {', '.join(vocabulary.constants) or 'none'}"


_DECL = re.compile(r"([^\W_][\w]*)\((\d)\)")


def read_vocabulary(text: str) -> Vocabulary:
    """Read the two lines back; repeats are dropped (first kept), as are constants named like variables."""
    head, sep, tail = text.partition("\nCONSTANTS: ")
    if not head.startswith("PREDICATES: ") or not sep:
        raise InputError("expected 'PREDICATES: ...' then a 'CONSTANTS: ...' line")
    decls = head[len("PREDICATES: "):].split(", ")
    predicates: dict[tuple[str, int], None] = {}
    for decl in decls:
        match = _DECL.fullmatch(decl)
        if match is None or not 1 <= int(match.group(2)) <= MAX_ARITY:
            raise InputError(f"predicate declaration {decl!r} is not Name(arity) with arity 1..{MAX_ARITY}")
        predicates.setdefault((match.group(1), int(match.group(2))), None)
    names = [] if tail.strip() == "none" else tail.strip().split(", ")
    if any(not _WORD.fullmatch(c) for c in names):
        raise InputError(f"constants {tail.strip()!r} are not a comma-separated list of names")
    constants = [c for c in dict.fromkeys(names) if c not in VARIABLES]
    return Vocabulary(predicates=list(predicates), constants=constants)


def vocabulary_of(formulas: Iterable[str]) -> Vocabulary:
    """The predicates and constants a set of formulas uses (how a few-shot example's vocabulary is made)."""
    predicates: dict[tuple[str, int], None] = {}
    constants: dict[str, None] = {}

    def walk(f: Formula) -> None:
        if isinstance(f, Atom):
            predicates.setdefault((f.pred, len(f.args)), None)
            for t in f.args:
                if isinstance(t, Const):
                    constants.setdefault(t.name, None)
            return
        for child in _children(f):
            walk(child)

    for text in formulas:
        walk(parse(text))
    return Vocabulary(predicates=list(predicates), constants=list(constants))


def _children(f: Formula) -> tuple[Formula, ...]:
    if isinstance(f, Not):
        return (f.arg,)
    if isinstance(f, (And, Or)):
        return f.args
    if isinstance(f, (Xor, Implies, Iff)):
        return (f.left, f.right)
    if isinstance(f, (ForAll, Exists)):
        return (f.body,)
    return ()


__all__ = ["FUNCTION_WORDS", "Grounding", "Vocabulary", "constant_candidates", "ground",
           "number_variants", "predicate_candidates", "read_vocabulary", "render_vocabulary",
           "says_not", "vocabulary_grammar", "vocabulary_of", "words_vocabularies"]
