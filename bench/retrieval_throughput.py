"""Retrieval throughput: the cached MiniLM index against re-embedding the corpus, and BM25.

    python -m bench.retrieval_throughput --people 1000 --queries 400 --repeats 3

On one corpus (the ATM people world at `--people`, two documents each, or `--corpus` JSONL) and
one set of questions, in one process, each repeat measures in turn:
- embed: `DenseIndex.build` over the corpus (documents embedded per second);
- load: the saved index read back (what `atm_retrieve` does instead of embedding);
- dense queries: query encoding + dot product + top-k against the loaded index (queries/s);
- re-embedding: build the index, then answer the same queries (what every run would pay without
  the cache), as queries per second of the whole job;
- BM25: building the index and answering the queries.
The headline ratios, medians over repeats: a cached job (load + queries) against a re-embedding
job (build + queries), and dense against BM25 queries per second. Output: a table on stdout,
bench/results/retrieval_throughput.md and .json."""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

from components.common.io import write_json
from components.common.retrieval import BM25Index, DenseIndex, SentenceEncoder, read_corpus

RESULTS = Path(__file__).resolve().parent / "results"


def timed(action):
    start = time.perf_counter()
    out = action()
    return out, time.perf_counter() - start


def world_corpus(people: int, seed: int):
    from components.atm.world import build_world

    built = build_world(people, seed)
    questions = [q.text for qs in built.questions.values() for q in qs]
    return built.corpus, questions


def measure(corpus, queries, k: int, encoder, folder: Path) -> dict[str, float]:
    index, embed = timed(lambda: DenseIndex.build(corpus, encoder))
    index.save(folder / "index")
    loaded, load = timed(lambda: DenseIndex.load(folder / "index", corpus, encoder))
    _, dense = timed(lambda: loaded.search(queries, k))
    _, rebuild = timed(lambda: DenseIndex.build(corpus, encoder).search(queries, k))
    bm25, bm25_build = timed(lambda: BM25Index(corpus))
    _, bm25_queries = timed(lambda: bm25.search(queries, k))
    return {
        "documents_per_second": len(corpus) / embed,
        "load_seconds": load,
        "dense_queries_per_second": len(queries) / dense,
        "cached_job_seconds": load + dense,
        "reembedding_job_seconds": rebuild,
        "bm25_build_seconds": bm25_build,
        "bm25_queries_per_second": len(queries) / bm25_queries,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.retrieval_throughput")
    parser.add_argument("--people", type=int, default=1000)
    parser.add_argument("--corpus", type=Path, help="a corpus JSONL instead of the world")
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    corpus, questions = world_corpus(args.people, args.seed)
    if args.corpus is not None:
        corpus = read_corpus(args.corpus)
    queries = (questions * (args.queries // len(questions) + 1))[: args.queries]
    encoder = SentenceEncoder()
    encoder.encode(queries[:8])  # warm-up
    runs = []
    with tempfile.TemporaryDirectory() as folder:
        for _ in range(args.repeats):
            runs.append(measure(corpus, queries, args.k, encoder, Path(folder)))
    median = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    ratios = {
        "reembedding_over_cached_job": statistics.median(
            r["reembedding_job_seconds"] / r["cached_job_seconds"] for r in runs
        ),
        "dense_over_bm25_queries_per_second": statistics.median(
            r["dense_queries_per_second"] / r["bm25_queries_per_second"] for r in runs
        ),
    }
    result = {
        "documents": len(corpus),
        "queries": len(queries),
        "k": args.k,
        "runs": runs,
        "median": median,
        "ratios": ratios,
    }
    RESULTS.mkdir(exist_ok=True)
    write_json(RESULTS / "retrieval_throughput.json", result)
    lines = [
        f"# Retrieval throughput ({len(corpus)} documents, {len(queries)} queries, k {args.k}, "
        f"median of {args.repeats})",
        "",
        "| measure | value |",
        "|---|---|",
        *(f"| {key} | {value:.3g} |" for key, value in median.items()),
        *(f"| **{key}** | **{value:.3g}** |" for key, value in ratios.items()),
    ]
    (RESULTS / "retrieval_throughput.md").write_text("\n".join(lines) + "\n", encoding="utf-8")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
