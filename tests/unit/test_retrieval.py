"""Retrieval index mechanics with a deterministic hashing embedder (the real MiniLM runs in
tests/integration/test_retrieval_real.py): search order, persistence, errors, the Tool."""

from __future__ import annotations

import json
import re
import zlib
from pathlib import Path

import faiss
import numpy as np
import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from agentkit.errors import ConfigError, InputError, ToolError
from agentkit.tools import Document, Embedder, Hit, RetrievalIndex, Tool, ToolArgumentError, retrieval_tool


class HashingEmbedder:
    """Bag of hashed words: texts sharing words are close; same input, same vector, no model."""

    def __init__(self, dim: int = 64, name: str = "hashing") -> None:
        self.dim = dim
        self.name = name
        self.calls: list[list[str]] = []

    def embed(self, texts: list[str]) -> np.ndarray:
        self.calls.append(list(texts))
        out = np.zeros((len(texts), self.dim), dtype=np.float32)
        for row, text in enumerate(texts):
            for word in re.findall(r"\w+", text.lower()):
                out[row, zlib.crc32(word.encode()) % self.dim] += 1.0
        norms = np.linalg.norm(out, axis=1, keepdims=True)
        return out / np.where(norms == 0, 1.0, norms)


DOCS = {
    "capital": "Beijing is the capital of China.",
    "zelda": "A Japanese game company created the Legend of Zelda.",
    "squares": "All squares have four sides.",
    "mammals": "Humans are mammals and mammals are animals.",
}


@pytest.fixture
def index() -> RetrievalIndex:
    return RetrievalIndex.from_documents(DOCS, embedder=HashingEmbedder())


def test_hashing_double_satisfies_the_embedder_protocol() -> None:
    assert isinstance(HashingEmbedder(), Embedder)


def test_search_ranks_by_cosine_and_returns_hits(index: RetrievalIndex) -> None:
    hits = index.search("who created the legend of zelda game", k=2)
    assert [type(h) for h in hits] == [Hit, Hit]
    assert hits[0].doc_id == "zelda" and hits[0].text == DOCS["zelda"]
    assert hits[0].score > hits[1].score
    # scores are cosines of unit vectors: recompute one by hand
    emb = HashingEmbedder()
    q, d = emb.embed(["who created the legend of zelda game", DOCS["zelda"]])
    assert hits[0].score == pytest.approx(float(q @ d), abs=1e-4)


def test_exact_duplicate_query_finds_itself_with_score_one(index: RetrievalIndex) -> None:
    for doc_id, text in DOCS.items():
        top = index.search(text, k=1)
        assert [h.doc_id for h in top] == [doc_id]
        assert top[0].score == pytest.approx(1.0, abs=1e-5)


def test_k_larger_than_the_corpus_returns_every_document_once(index: RetrievalIndex) -> None:
    hits = index.search("squares", k=50)
    assert sorted(h.doc_id for h in hits) == sorted(DOCS)
    assert [h.score for h in hits] == sorted((h.score for h in hits), reverse=True)


def test_document_forms_and_default_ids() -> None:
    emb = HashingEmbedder()
    assert [d.id for d in RetrievalIndex.from_documents(["a b", "c d"], embedder=emb).documents] == ["0", "1"]
    docs = [Document(id="x", text="alpha"), Document(id="y", text="beta")]
    built = RetrievalIndex.from_documents(docs, embedder=emb)
    assert built.documents == docs and len(built) == 2 and built.dim == 64


@pytest.mark.parametrize(
    ("docs", "message"),
    [
        ([], "corpus is empty"),
        ({}, "corpus is empty"),
        (["fine", "   "], "document '1' has no text"),
        ({"a": "x", "b": None}, "document 'b' has no text"),
        ([Document(id="a", text="x"), Document(id="a", text="y")], "'a' appears twice"),
        ("one string", "not one string"),
    ],
)
def test_bad_corpora_are_config_errors(docs: object, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        RetrievalIndex.from_documents(docs, embedder=HashingEmbedder())  # type: ignore[arg-type]


@pytest.mark.parametrize("k", [0, -1, 2.5, True, "3"])
def test_k_out_of_range_is_a_config_error(index: RetrievalIndex, k: object) -> None:
    with pytest.raises(ConfigError, match="k must be a positive integer"):
        index.search("capital", k=k)  # type: ignore[arg-type]


def test_empty_query_is_an_input_error(index: RetrievalIndex) -> None:
    with pytest.raises(InputError, match="query is empty"):
        index.search("  \n", k=1)


class _WrongShape:
    def __init__(self, rows_delta: int = 0, dim: int = 8) -> None:
        self.rows_delta, self.dim = rows_delta, dim

    def embed(self, texts: list[str]) -> np.ndarray:
        return np.ones((len(texts) + self.rows_delta, self.dim), dtype=np.float32)


def test_embedder_returning_the_wrong_number_of_rows() -> None:
    with pytest.raises(ConfigError, match=r"shape \(3, 8\) for 2 texts"):
        RetrievalIndex.from_documents(["a", "b"], embedder=_WrongShape(rows_delta=1))


def test_embedder_returning_nan() -> None:
    class NaN:
        def embed(self, texts: list[str]) -> np.ndarray:
            return np.full((len(texts), 4), np.nan, dtype=np.float32)

    with pytest.raises(ConfigError, match="NaN"):
        RetrievalIndex.from_documents(["a"], embedder=NaN())


def test_query_embedder_dimension_mismatch_names_both_dims(index: RetrievalIndex) -> None:
    index.embedder = HashingEmbedder(dim=32)
    with pytest.raises(ConfigError, match="produces 32-dimensional vectors but the index holds 64"):
        index.search("capital", k=1)


def test_unnormalised_embedders_still_give_cosine_scores() -> None:
    class Scaled(HashingEmbedder):
        def embed(self, texts: list[str]) -> np.ndarray:
            return super().embed(texts) * 7.0

    built = RetrievalIndex.from_documents(DOCS, embedder=Scaled())
    assert built.search(DOCS["squares"], k=1)[0].score == pytest.approx(1.0, abs=1e-5)


# ------------------------------------------------------------------------------- persistence
def test_save_load_round_trip(index: RetrievalIndex, tmp_path: Path) -> None:
    where = index.save(tmp_path / "idx")
    assert sorted(p.name for p in where.iterdir()) == ["docs.json", "index.faiss"]
    meta = json.loads((where / "docs.json").read_text(encoding="utf-8"))
    assert meta["embedder"] == "hashing" and meta["dim"] == 64 and len(meta["documents"]) == len(DOCS)
    loaded = RetrievalIndex.load(where, embedder=HashingEmbedder())
    assert loaded.documents == index.documents
    for query in ("capital of China", "four sides", "Japanese game"):
        assert loaded.search(query, k=3) == index.search(query, k=3)


def test_load_with_an_embedder_of_another_dimension(index: RetrievalIndex, tmp_path: Path) -> None:
    index.save(tmp_path)
    with pytest.raises(ConfigError, match="built with 64-dimensional embeddings .*hashing.* produces 16"):
        RetrievalIndex.load(tmp_path, embedder=HashingEmbedder(dim=16))


def test_load_with_a_differently_named_embedder_warns(
    index: RetrievalIndex, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    index.save(tmp_path)
    RetrievalIndex.load(tmp_path, embedder=HashingEmbedder(name="other"))
    assert "built with embedder 'hashing', now queried with 'other'" in caplog.text


def test_load_missing_directory_names_the_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope"
    with pytest.raises(ConfigError, match=f"{re.escape(str(missing))} does not exist"):
        RetrievalIndex.load(missing, embedder=HashingEmbedder())


@pytest.mark.parametrize("lost", ["index.faiss", "docs.json"])
def test_load_directory_missing_a_file(index: RetrievalIndex, tmp_path: Path, lost: str) -> None:
    index.save(tmp_path)
    (tmp_path / lost).unlink()
    with pytest.raises(
        ConfigError, match=f"{re.escape(str(tmp_path))} is not a saved retrieval index: {lost} is missing"
    ):
        RetrievalIndex.load(tmp_path, embedder=HashingEmbedder())


@pytest.mark.parametrize(
    ("docs_json", "message"),
    [
        ("{not json", "docs.json is corrupt"),
        ('{"format": 99, "dim": 64, "documents": []}', "unknown format 99"),
        ('{"format": 1, "dim": 64}', "docs.json is corrupt"),
        ('{"format": 1, "dim": 64, "documents": [{"id": "", "text": "x"}]}', "docs.json is corrupt"),
        ("[1, 2]", "docs.json is corrupt"),
    ],
)
def test_load_corrupt_docs_json(index: RetrievalIndex, tmp_path: Path, docs_json: str, message: str) -> None:
    index.save(tmp_path)
    (tmp_path / "docs.json").write_text(docs_json, encoding="utf-8")
    with pytest.raises(ConfigError, match=message) as err:
        RetrievalIndex.load(tmp_path, embedder=HashingEmbedder())
    assert str(tmp_path) in str(err.value)


def test_load_corrupt_faiss_file(index: RetrievalIndex, tmp_path: Path) -> None:
    index.save(tmp_path)
    (tmp_path / "index.faiss").write_bytes(b"\x00garbage" * 10)
    with pytest.raises(ConfigError, match="index.faiss is not a readable faiss index"):
        RetrievalIndex.load(tmp_path, embedder=HashingEmbedder())


def test_load_index_and_docs_that_disagree(index: RetrievalIndex, tmp_path: Path) -> None:
    index.save(tmp_path)
    other = faiss.IndexFlatIP(64)
    other.add(np.eye(64, dtype=np.float32)[:2])
    faiss.write_index(other, str(tmp_path / "index.faiss"))
    with pytest.raises(ConfigError, match=r"\(2 vectors of 64 dims\) does not match docs.json \(4 documents"):
        RetrievalIndex.load(tmp_path, embedder=HashingEmbedder())


# ---------------------------------------------------------------------------------- the tool
def test_retrieval_tool_has_typed_bounded_arguments(index: RetrievalIndex) -> None:
    search = retrieval_tool(index)
    assert isinstance(search, Tool) and search.name == "search"
    props = search.json_schema()["properties"]
    assert props["k"]["minimum"] == 1 and props["k"]["maximum"] == 10 and props["k"]["default"] == 3
    assert props["query"]["minLength"] == 1 and props["query"]["description"] == "what to look for, in plain words."
    hits = search.call({"query": "capital of China", "k": 1})
    assert [h.doc_id for h in hits] == ["capital"]
    assert [h.doc_id for h in search.call('{"query": "four sides"}')][:1] == ["squares"]
    assert retrieval_tool(index, name="lookup", description="Find facts.").spec().description == "Find facts."


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ({"query": "x", "k": 0}, "argument 'k'"),
        ({"query": "x", "k": 11}, "argument 'k'"),
        ({"query": ""}, "argument 'query'"),
        ({"k": 2}, "missing required argument 'query'"),
        ({"query": "x", "top": 2}, "unexpected argument 'top'"),
    ],
)
def test_retrieval_tool_rejects_bad_arguments(index: RetrievalIndex, args: dict, message: str) -> None:
    with pytest.raises(ToolArgumentError, match=message):
        retrieval_tool(index).call(args)


def test_retrieval_tool_whitespace_query_is_a_tool_error(index: RetrievalIndex) -> None:
    with pytest.raises(ToolError, match="tool 'search' failed: InputError: the search query is empty"):
        retrieval_tool(index).call({"query": "   "})


def test_retrieval_tool_call_is_one_execute_tool_span(index: RetrievalIndex, spans: InMemorySpanExporter) -> None:
    retrieval_tool(index).call({"query": "zelda"})
    (span,) = spans.get_finished_spans()
    assert span.name == "execute_tool search"
    assert span.attributes["gen_ai.tool.name"] == "search"


def test_search_many_is_one_embedder_call_and_agrees_with_search(index: RetrievalIndex) -> None:
    queries = ["capital of China", "four sides", "Japanese game"]
    index.embedder.calls.clear()  # type: ignore[attr-defined]
    batched = index.search_many(queries, k=2)
    assert index.embedder.calls == [queries]  # type: ignore[attr-defined]
    assert batched == [index.search(q, k=2) for q in queries]
    assert index.search_many([], k=2) == []
    with pytest.raises(ConfigError, match="not one string"):
        index.search_many("capital", k=1)
    with pytest.raises(InputError, match="query is empty"):
        index.search_many(["ok", ""], k=1)
