"""LINC's paper-mode few-shot prompt: eight FOLIO-train stories, one conclusion each.

The paper prompts with 8 FOLIO training examples whose every sentence is followed by its FOL. FOLIO
train gives premise FOL but no conclusion FOL, so the conclusion formulas below are ours. How they
were chosen, and what keeps them honest:

* each story's gold premise FOL parses, has one formula per sentence, is consistent, fits LINC's
  default grammar bounds (depth 4, width 4), and is printed here canonically (``to_str``), the
  only spelling the grammar lets the model write;
* each conclusion formula uses the story's own predicates and constants, and z3 proves premises +
  conclusion give the row's gold label (tests/unit/test_linc_shots.py re-proves all eight, and
  checks every sentence and premise formula against folio-train.jsonl);
* labels 3 True, 3 False, 2 Uncertain, interleaved so no label runs twice in a row.

``row`` is the 0-based line in agentkit/eval/data/folio/folio-train.jsonl; ``story``/``example``
are FOLIO's own ``story_id``/``example_id``.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class FolioShot:
    row: int
    story: int
    example: int
    label: str  # FOLIO's word, with train's "Unknown" spelt "Uncertain"
    premises: tuple[tuple[str, str], ...]  # (sentence, canonical gold FOL)
    conclusion: tuple[str, str]  # (sentence, our FOL)


FOLIO8: tuple[FolioShot, ...] = (
    FolioShot(553, 52, 152, "True", (
        ("The Lumina APV is produced by Chevrolet.", "Chevrolet(luminaAPV)"),
        ("The Astro is a van produced by Chevrolet.", "Chevrolet(astro) ∧ Van(astro)"),
        ("Cars produced by Chevrolet are either cars or vans.", "∀x (Chevrolet(x) → (Car(x) ⊕ Van(x)))"),
    ), ("The Lumina APV is either a car or a van.", "Car(luminaAPV) ⊕ Van(luminaAPV)")),
    FolioShot(841, 455, 1316, "False", (
        ("All bread is food.", "∀x (Bread(x) → Food(x))"),
        ("Some sandwiches are bread.", "∃x (Sandwich(x) ∧ Bread(x))"),
        ("All food is edible.", "∀x (Food(x) → Edible(x))"),
        ("No edible things are poisonous.", "∀x (Edible(x) → ¬Poisonous(x))"),
        ("Deodorant is poisonous.", "Poisonous(deodorant)"),
    ), ("Deodorant is a sandwich and bread.", "Sandwich(deodorant) ∧ Bread(deodorant)")),
    FolioShot(724, 438, 1263, "Uncertain", (
        ("No kid loves the Opera.", "∀x (Kid(x) → ¬OperaLover(x))"),
        ("All adults love the Opera.", "∀x (Adult(x) → OperaLover(x))"),
        ("If someone is a scientist, then they are an adult.", "∀x (Scientist(x) → Adult(x))"),
        ("Some students are kids.", "∃x (Student(x) ∧ Kid(x))"),
        ("Billy is a kid.", "Kid(billy)"),
    ), ("Billy is a student.", "Student(billy)")),
    FolioShot(462, 173, 501, "True", (
        ("Detroit City is a horse.", "Horse(detroitcity)"),
        ("Some horses are racehorses.", "∃x (Horse(x) ∧ Racehorse(x))"),
        ("If a horse falls during a race, then it dies.", "∀x ((Horse(x) ∧ Racing(x) ∧ Falls(x)) → Dead(x))"),
        ("Detroit City fell during a race.", "Racing(detroitcity) ∧ Falls(detroitcity)"),
        ("A horse is a racehorse if it is in a race.", "∀x ((Horse(x) ∧ Racing(x)) → Racehorse(x))"),
    ), ("Detroit City is dead.", "Dead(detroitcity)")),
    FolioShot(292, 108, 330, "False", (
        ("All commerical aircraft are produced by either Boeing or Airbus.",
         "∀x (CommercialAircraft(x) → (ProducedBy(x, boeing) ⊕ ProducedBy(x, airbus)))"),
        ("All American Airlines jets are commerical aircraft.",
         "∀x (AmericanAirlinesAircraft(x) → CommercialAircraft(x))"),
        ("Airbus made more in revenue than Boeing last year.", "MoreinRevenue(airbus, boeing)"),
    ), ("There is a commercial plane made by both Airbus and Boeing.",
        "∃x (CommercialAircraft(x) ∧ ProducedBy(x, airbus) ∧ ProducedBy(x, boeing))")),
    FolioShot(27, 82, 252, "Uncertain", (
        ("Lawton Park is a neighbourhood in Seattle.", "Neighbourhoodin(lawtonPark, seattle)"),
        ("All citizens of Lawton Park use the zip code 98199.",
         "∀x (Citizenof(x, lawtonPark) → Usezipcode(x, number98199))"),
        ("Tom is a citizen of Lawton Park.", "Citizenof(tom, lawtonPark)"),
        ("Daniel uses the zip code 98199.", "Usezipcode(daniel, number98199)"),
    ), ("Tom is a citizen of Washington.", "Citizenof(tom, washington)")),
    FolioShot(781, 42, 122, "True", (
        ("James Cocks was a British lawyer.", "British(james) ∧ Lawyer(james)"),
        ("James Cocks was a Whig politician who sat in the House of Commons.",
         "Whig(james) ∧ Politician(james) ∧ SatInHouseOfCommons(james)"),
        ("A British is a European.", "∀x (British(x) → European(x))"),
        ("Any lawyer is familiar with laws.", "∀x (Lawyer(x) → FamiliarWithLaws(x))"),
        ("Some Whigs speak French.", "∃x (Whig(x) ∧ SpeakFrench(x))"),
    ), ("Some European is familiar with laws.", "∃x (European(x) ∧ FamiliarWithLaws(x))")),
    FolioShot(693, 111, 338, "False", (
        ("Aberdeen won the cup in the 2013 final.", "WonCup(aberdeen, twentythirteen)"),
        ("Rangers won the cup in 2014 final.", "WonCup(rangers, twentyfourteen)"),
        ("Aberdeen and Rangers are different teams.", "Different(aberdeen, rangers) ∧ Different(rangers, aberdeen)"),
        ("Different teams cannot win the same cup in a given year's final.",
         "∀x ∀y ∀z ((Different(x, y) ∧ WonCup(x, z)) → ¬WonCup(y, z))"),
    ), ("Rangers won the cup in 2013.", "WonCup(rangers, twentythirteen)")),
)
