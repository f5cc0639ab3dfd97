"""atm_index: the corpus embedded once by MiniLM, the dense retriever's cache.

    python -m components.atm index --data data/atm --out data/atm_index --reports reports/atm/index

Its own stage so that the embeddings, the costly part, are a DVC output that depends on the corpus
alone: new questions or another top-k re-run only `atm_retrieve`. The folder holds
embeddings.npy, ids.json and index.json (the corpus digest, checked when it is loaded)."""

from __future__ import annotations

import logging
import time
from pathlib import Path

from components.atm.params import AtmRetrieveStep, RetrieveParams
from components.common.cli import path_arguments, step_main, step_parser
from components.common.params import Profile
from components.common.retrieval import DenseIndex, SentenceEncoder, read_corpus
from components.common.tracking import step_run

log = logging.getLogger(__name__)


def run(
    params: RetrieveParams, profile: Profile, data_dir: Path, out_dir: Path
) -> dict[str, float]:
    import mlflow

    with step_run("atm_index", profile, params):
        corpus = read_corpus(data_dir / "corpus.jsonl")
        encoder = SentenceEncoder()
        start = time.perf_counter()
        index = DenseIndex.build(corpus, encoder, params.batch_size)
        seconds = time.perf_counter() - start
        index.save(out_dir)
        metrics = {"documents": float(len(corpus)), "documents_per_second": len(corpus) / seconds}
        mlflow.log_metrics(metrics)
        log.info("atm_index wrote %s: %s", out_dir, metrics)
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.atm index", __doc__, AtmRetrieveStep)
    path_arguments(parser, "inputs", data=("data/atm", "atm_data's output (corpus.jsonl)"))
    path_arguments(parser, "outputs", out=("data/atm_index", "the corpus's MiniLM embeddings"))
    args = parser.parse_args(argv)
    return step_main(
        "atm_index",
        args,
        AtmRetrieveStep,
        lambda p: run(p.atm_retrieve, p.profile, args.data, args.out),
    )
