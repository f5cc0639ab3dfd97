"""ilp_diagnosis: which training records did SFT fail to learn, and why.

Inputs: the SFT set (data_dir/train.jsonl), the base and fine-tuned models, and the finetune step's
per-sample dynamics (dynamics.csv). Outputs in `report_dir`: diagnosis.jsonl (one row per record:
detection, and signals + cause + evidence for the unlearned), summary.json, cause_breakdown.png
and, when the records carry a planted cause in `meta`, ground_truth.json and confusion.png. The
planted cause is split off before diagnosis: the diagnosis never sees `meta`."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import mlflow

from components.common.io import ProjectError, atomic_path, read_jsonl, write_json, write_jsonl
from components.common.matrix_plot import matrix_plot
from components.common.models import load_causal_lm, load_tokenizer
from components.common.params import Profile
from components.common.plots import bar_plot
from components.common.repro import seed_everything
from components.common.sft import per_record_loss
from components.common.tracking import step_run
from components.ilp_diagnosis import report, signals
from components.ilp_diagnosis.diagnose import diagnose
from components.ilp_diagnosis.params import IlpParams

log = logging.getLogger(__name__)
TRUTH_KEY = "planted_cause"


def split_truth(records: list[dict[str, Any]]) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Records without `meta` (what the diagnosis sees) and id -> planted cause (if every record
    has one; otherwise no ground truth)."""
    truth = {r["id"]: r.get("meta", {}).get(TRUTH_KEY) for r in records}
    clean = [{k: v for k, v in r.items() if k != "meta"} for r in records]
    return clean, truth if all(truth.values()) else {}


def load_train(data_dir: Path) -> list[dict[str, Any]]:
    path = data_dir / "train.jsonl"
    records = read_jsonl(path)
    if not records:
        raise ProjectError("the SFT set is empty: nothing to diagnose", file=path)
    for line, record in enumerate(records, start=1):
        for key in ("id", "task", "prompt", "response"):
            if not isinstance(record.get(key), str):
                raise ProjectError("missing or not a string", file=path, line=line, field=key)
    return records


def check_models(data_dir: Path, base_dir: Path, sft_dir: Path, base, sft, tokenizer) -> None:
    """The two models and the data must share one tokenizer and architecture."""
    vocab = tokenizer.get_vocab()
    if load_tokenizer(sft_dir).get_vocab() != vocab:
        raise ProjectError(
            f"the fine-tuned model's tokenizer differs from the base model's ({base_dir})",
            file=sft_dir,
            field="tokenizer",
        )
    data_tokenizer = data_dir / "tokenizer"
    if data_tokenizer.is_dir() and load_tokenizer(data_tokenizer).get_vocab() != vocab:
        raise ProjectError(
            f"the models' tokenizer ({base_dir}) is not the one trained on this data",
            file=data_tokenizer,
            field="tokenizer",
        )
    for directory, model in ((base_dir, base), (sft_dir, sft)):
        rows = model.get_input_embeddings().weight.shape[0]
        if rows < len(tokenizer):
            raise ProjectError(
                f"checkpoint has {rows} embedding rows for a {len(tokenizer)}-token tokenizer",
                file=directory,
                field="vocab_size",
            )
    for key in ("model_type", "hidden_size", "num_hidden_layers"):
        if getattr(base.config, key, None) != getattr(sft.config, key, None):
            raise ProjectError(
                f"base and fine-tuned checkpoints differ in {key}", file=sft_dir, field=key
            )


def check_dynamics_origin(
    base, tokenizer, records, trajectories, dynamics_path: Path, max_length: int
) -> None:
    """Step-0 losses in dynamics.csv were measured on the base model: re-measure a few."""
    sample = [r for r in records if trajectories[r["id"]][0][0] == 0][:8]
    if not sample:
        return  # resumed run: no step-0 row
    losses = per_record_loss(base, tokenizer, sample, max_length, batch_size=len(sample))
    for record, loss in zip(sample, losses, strict=True):
        logged = trajectories[record["id"]][0][1]
        if abs(loss - logged) > max(0.05, 0.05 * abs(logged)):
            raise ProjectError(
                f"the base model gives loss {loss:.3f} on {record['id']!r}, the dynamics say "
                f"{logged:.3f} at step 0: dynamics and base checkpoint do not belong together",
                file=dynamics_path,
                field="loss",
            )


def write_reports(
    report_dir: Path, rows: list[dict], run_facts: dict, truth: dict[str, str]
) -> dict[str, Any]:
    """diagnosis.jsonl, summary.json, PNGs; returns the summary (+ ground truth) and PNG paths."""
    summary = report.summary(rows, run_facts)
    truth_report = report.ground_truth_report(rows, truth) if truth else None
    with atomic_path(report_dir) as tmp:
        tmp.mkdir()
        write_jsonl(tmp / "diagnosis.jsonl", rows)
        write_json(tmp / "summary.json", summary)
        bar_plot(
            {
                c.replace("unattributed", "none"): float(n)
                for c, n in summary["cause_counts"].items()
            },
            tmp / "cause_breakdown.png",
            title=f"Causes of {summary['analysed']} unlearned records",
            ylabel="records",
        )
        if truth_report is not None:
            write_json(tmp / "ground_truth.json", truth_report)
            confusion = truth_report["confusion"]
            matrix_plot(
                confusion["matrix"],
                confusion["rows"],
                confusion["cols"],
                tmp / "confusion.png",
                title=f"Planted vs diagnosed (macro-F1 {truth_report['macro_f1']:.2f})",
                xlabel="diagnosed",
                ylabel="planted",
                fmt="{:.0f}",
            )
    return {"summary": summary, "truth": truth_report}


def run(
    params: IlpParams,
    profile: Profile,
    data_dir: Path,
    base_dir: Path,
    sft_dir: Path,
    dynamics_path: Path,
    report_dir: Path,
) -> dict[str, float]:
    seed_everything(params.seeds[0])
    # every input is checked before anything is logged or written
    records, truth = split_truth(load_train(data_dir))
    trajectories = signals.read_dynamics(dynamics_path, [r["id"] for r in records])
    base, tokenizer = load_causal_lm(base_dir)
    sft, _ = load_causal_lm(sft_dir)
    check_models(data_dir, base_dir, sft_dir, base, sft, tokenizer)
    check_dynamics_origin(base, tokenizer, records, trajectories, dynamics_path, params.max_length)
    embed = signals.minilm_embedder() if params.similarity == "embedding" else None
    with step_run("ilp_diagnosis", profile, params):
        rows, run_facts = diagnose(records, base, sft, tokenizer, trajectories, params, embed)
        written = write_reports(report_dir, rows, run_facts, truth)
        metrics = report.flat_metrics(written["summary"], written["truth"])
        mlflow.log_metrics(metrics)
        mlflow.log_dict(written["summary"], "ilp/summary.json")
        for png in sorted(report_dir.glob("*.png")):
            mlflow.log_artifact(str(png), artifact_path="plots")
        log.info("ilp_diagnosis: %s", metrics)
        return metrics
