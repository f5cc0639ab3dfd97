"""The retrievers: BM25 and top-k by hand-computed cases, the corpus contract, and the real
MiniLM dense index (built, saved, reloaded, refused for another corpus)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from components.common.io import ProjectError, write_jsonl
from components.common.retrieval import (
    BM25Index,
    DenseIndex,
    Document,
    read_corpus,
    recall_at_k,
    top_k,
)

TINY = [Document("d1", "", "a b"), Document("d2", "", "b c"), Document("d3", "", "c d")]


def test_bm25_score_by_hand():
    # "a" is in 1 of 3 documents: idf = ln((3 - 1 + 0.5) / (1 + 0.5)) = ln(5/3); d1 has tf 1 and
    # the mean length, so tf (k1 + 1) / (tf + k1) = 2.5 / 2.5 = 1 and its score is ln(5/3)
    ((first, score), *rest) = BM25Index(TINY).search(["a"], k=3)[0]
    assert first == "d1" and score == pytest.approx(math.log(5 / 3))
    assert [s for _, s in rest] == [0.0, 0.0]


def test_top_k_breaks_ties_in_corpus_order_and_caps_k():
    scores = np.array([[1.0, 3.0, 3.0], [0.5, 0.2, 0.9]])
    assert top_k(scores, ["x", "y", "z"], 2) == [[("y", 3.0), ("z", 3.0)], [("z", 0.9), ("x", 0.5)]]
    assert len(top_k(scores, ["x", "y", "z"], 10)[0]) == 3


def test_recall_at_k_counts_queries_with_a_gold_hit():
    hits = [[("a", 1.0), ("b", 0.5)], [("c", 1.0), ("d", 0.5)]]
    assert recall_at_k(hits, [{"b"}, {"e"}], k=2) == 0.5
    assert recall_at_k(hits, [{"b"}, {"c"}], k=1) == 0.5


@pytest.mark.parametrize(
    ("line", "field"),
    [
        ({"id": "x", "title": "t"}, "text"),
        ({"id": "", "title": "t", "text": "y"}, "id"),
        ({"id": "d1", "title": "t", "text": "again"}, "id"),
    ],
)
def test_bad_corpus_line_names_file_line_and_field(tmp_path, line, field):
    path = tmp_path / "corpus.jsonl"
    write_jsonl(path, [{"id": "d1", "title": "t", "text": "ok"}, line])
    with pytest.raises(ProjectError, match=rf"corpus.jsonl:2 \[{field}\]"):
        read_corpus(path)


def test_dense_index_finds_the_paraphrase_and_reloads_only_for_its_corpus(tmp_path):
    documents = [
        Document("cat", "Cats", "The cat sleeps on the warm windowsill all afternoon."),
        Document("bank", "Banks", "The bank raised its interest rates on savings accounts."),
        Document("rain", "Weather", "Heavy rain flooded the streets of the old town."),
    ]
    index = DenseIndex.build(documents)
    assert np.allclose(np.linalg.norm(index.embeddings, axis=1), 1.0, atol=1e-5)
    hits = index.search(["Where does the kitten nap?", "mortgage and loan rates"], k=1)
    assert [row[0][0] for row in hits] == ["cat", "bank"]
    reloaded = DenseIndex.load(index.save(tmp_path / "index"), documents, index.encoder)
    assert reloaded.search(["Where does the kitten nap?"], k=3) == index.search(
        ["Where does the kitten nap?"], k=3
    )
    with pytest.raises(ProjectError, match="another corpus"):
        DenseIndex.load(tmp_path / "index", documents[:2], index.encoder)
