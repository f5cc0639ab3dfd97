"""The planted-cause benchmark, end to end, for several seeds:

    python -m experiments.ilp.benchmark [--seeds 0 1 2] [--work .cache/ilp_benchmark]

Per seed: planted data (data_prep) -> tiny base (pretrain) -> sequential SFT (finetune, method
full) -> diagnosis (ilp_diagnosis step; the planted cause is split off before it) -> the
interventions X1..X5 and their controls, each re-trained with the same recipe -> recovery matrix.
Writes docs/results/ilp_benchmark.json, docs/results/img/ilp_*.png and the tables between the
benchmark markers of docs/results/ilp.md; every spread is `experiments.report.mean_std`'s sample
std over seeds."""

from __future__ import annotations

import argparse
import logging
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from components.common.io import read_json, read_jsonl, write_json
from components.common.models import load_causal_lm
from components.common.params import ModelParams, Profile, TinyModelParams
from components.data_prep import planted
from components.data_prep import step as data_prep
from components.data_prep.params import DataPrepParams
from components.epi_finetune import step as finetune
from components.epi_finetune.params import FinetuneParams
from components.ilp_diagnosis import mitigate
from components.ilp_diagnosis import step as ilp_step
from components.ilp_diagnosis.attribute import CAUSES
from components.ilp_diagnosis.diagnose import detect_records, questions_for
from components.ilp_diagnosis.params import IlpParams
from components.pretrain import step as pretrain
from components.pretrain.params import PretrainParams
from experiments.ilp import report
from experiments.ilp.report import INTERVENTIONS
from experiments.report import mean_std

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class BenchmarkConfig:
    seeds: tuple[int, ...] = (0, 1, 2)
    arch: TinyModelParams = TinyModelParams(
        hidden_size=128, intermediate_size=256, num_hidden_layers=2, num_attention_heads=4
    )
    pretrain: PretrainParams = PretrainParams(
        max_steps=400, batch_size=32, learning_rate=5e-3, logging_steps=100
    )
    finetune: FinetuneParams = FinetuneParams(
        method="full",
        # each stage gets half the steps: stage 0 (13% of the records, the C4 items) ~30 epochs,
        # stage 1 ~4.4; `proportional` (--stage-steps) gives every record ~7.7, like X4's mix
        schedule="sequential",
        track_drift=False,
        max_steps=120,
        batch_size=16,
        learning_rate=1e-3,
        max_length=48,
        eval_every=10**6,  # stage ends only
        eval_per_task=4,
        dynamics_every=10,
        save_steps=10**6,
        logging_steps=40,
        resume=False,
    )
    ilp: IlpParams = IlpParams(max_length=48, max_new_tokens=8)
    cpt_steps: int = 100
    cpt_learning_rate: float = 1e-3
    cpt_lines: int = 1500  # every CPT corpus has this many lines: compute-matched
    general_share: float = 0.8
    docs_per_fact: int = 10
    upsample: int = 3  # X5: three extra copies = x4
    replay: int = 1  # X4: one extra copy of each forgotten record
    interventions: bool = True
    profile: Profile = "tiny"
    # the sentences CPT documents state a fact in (format fields: attribute, name, value)
    corpus_templates: tuple[str, ...] = planted.CORPUS_TEMPLATES
    # one planted world and base for every seed (seeds vary SFT, sampling and interventions);
    # None: a world per seed. Pretraining is the costliest stage on a shared 2-core machine.
    world_seed: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def smoke_config(seeds: tuple[int, ...] = (0,)) -> BenchmarkConfig:
    """Every stage for real, with a handful of steps (tests, and a quick look at the wiring)."""
    cfg = BenchmarkConfig()
    return BenchmarkConfig(
        seeds=seeds,
        arch=TinyModelParams(
            hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
        ),
        pretrain=cfg.pretrain.model_copy(update={"max_steps": 4, "batch_size": 8}),
        finetune=cfg.finetune.model_copy(
            update={"max_steps": 4, "batch_size": 8, "dynamics_every": 2, "logging_steps": 2}
        ),
        cpt_steps=2,
        cpt_lines=200,
    )


def _finetune(cfg: BenchmarkConfig, seed: int, **overrides: Any) -> FinetuneParams:
    return cfg.finetune.model_copy(update={"seed": seed, **overrides})


def detect_on(model_dir: Path, records: Sequence[dict], params: IlpParams) -> dict[str, bool]:
    """id -> unlearned, for the records as they are (no meta)."""
    model, tokenizer = load_causal_lm(model_dir)
    clean = [{k: v for k, v in r.items() if k != "meta"} for r in records]
    questions = questions_for(clean, params)
    detection = detect_records(model, tokenizer, questions, params)
    return {r["id"]: bool(u) for r, u in zip(clean, detection.unlearned, strict=True)}


def run_seed(cfg: BenchmarkConfig, seed: int, root: Path) -> dict[str, Any]:
    """One seed; a stage whose output exists is not run again (an interrupted run resumes)."""
    world_seed = seed if cfg.world_seed is None else cfg.world_seed
    world, work = root / f"seed{world_seed}", root / f"seed{seed}"
    work.mkdir(parents=True, exist_ok=True)
    data = world / "data"
    if not (data / "train.jsonl").is_file():
        data_prep.run(
            DataPrepParams(synthetic="ilp_planted", seed=world_seed),
            "tiny",
            data,
            world / "reports/data",
        )
        planted.use_raw_prompts(data / "tokenizer")
    base = world / "base"
    if not (base / "config.json").is_file():
        pretrain.run(
            cfg.pretrain.model_copy(update={"seed": world_seed}),
            ModelParams(tiny=cfg.arch),
            "tiny",
            data,
            base,
            world / "reports/pretrain",
        )
    return diagnose_seed(cfg, seed, work, data, base)


def diagnose_seed(cfg: BenchmarkConfig, seed: int, work: Path, data: Path, base: Path) -> dict:
    """Plain SFT, its diagnosis, and (cfg.interventions) every intervention, of one seed on a
    built world (data folder and base); a stage whose output exists is not run again."""
    sft = work / "sft"
    if not (sft / "config.json").is_file():
        finetune.run(_finetune(cfg, seed), cfg.profile, data, base, sft, work / "reports/sft")
    if not (work / "reports/ilp/diagnosis.jsonl").is_file():
        ilp_step.run(
            cfg.ilp,
            cfg.profile,
            data,
            base,
            sft,
            work / "reports/sft/dynamics.csv",
            work / "reports/ilp",
        )

    records = read_jsonl(data / "train.jsonl")
    truth = {r["id"]: r["meta"]["planted_cause"] for r in records}
    rows = read_jsonl(work / "reports/ilp/diagnosis.jsonl")
    result: dict[str, Any] = {
        "seed": seed,
        "summary": read_json(work / "reports/ilp/summary.json"),
        "truth": read_json(work / "reports/ilp/ground_truth.json"),
        "labels": {r["id"]: r.get("label") for r in rows},
        "planted": truth,
        "unlearned": {r["id"]: r["unlearned"] for r in rows},
    }
    if cfg.interventions:
        result["after"] = interventions(cfg, seed, work, data, base, records, rows)
    return result


def cpt_corpora(
    cfg: BenchmarkConfig, seed: int, general: list[str], clean: list[dict], rows: list[dict]
) -> dict[str, list[str]]:
    """The continued-pretraining corpora, all of `cfg.cpt_lines` lines: X1 adds documents stating
    the C1 records' facts, X2 those of the C2 records (their subjects' old facts dropped),
    ctrl_cpt only general text."""
    c1, c2 = mitigate.diagnosed(rows, "C1"), mitigate.diagnosed(rows, "C2")
    corrected_subjects = [
        t.subject
        for r in clean
        if r["id"] in c2
        for t in mitigate.facts.extract(r["prompt"], r["response"])
    ]
    return {
        "X1": mitigate.cpt_mix(
            general,
            mitigate.fact_documents(clean, c1, cfg.corpus_templates, cfg.docs_per_fact),
            cfg.general_share,
            seed,
            size=cfg.cpt_lines,
        ),
        "X2": mitigate.cpt_mix(
            general,
            mitigate.fact_documents(clean, c2, cfg.corpus_templates, cfg.docs_per_fact),
            cfg.general_share,
            seed,
            drop_subjects=corrected_subjects,
            size=cfg.cpt_lines,
        ),
        "ctrl_cpt": mitigate.cpt_mix(general, [], cfg.general_share, seed, size=cfg.cpt_lines),
    }


def interventions(
    cfg: BenchmarkConfig,
    seed: int,
    work: Path,
    data: Path,
    base: Path,
    records: list[dict],
    rows: list[dict],
) -> dict[str, dict[str, bool]]:
    """intervention -> id -> unlearned after it (original records; X3r: its new labels)."""
    clean = [{k: v for k, v in r.items() if k != "meta"} for r in records]
    general = (data / "corpus.txt").read_text(encoding="utf-8").splitlines()
    after: dict[str, dict[str, bool]] = {}
    for name, lines in cpt_corpora(cfg, seed, general, clean, rows).items():
        cpt_dir = work / f"cpt_{name}"
        if (work / f"after_{name}.json").is_file():
            after[name] = read_json(work / f"after_{name}.json")
            continue
        mitigate.continued_pretraining(
            base,
            lines,
            cpt_dir,
            steps=cfg.cpt_steps,
            batch_size=cfg.pretrain.batch_size,
            block_size=cfg.pretrain.block_size,
            learning_rate=cfg.cpt_learning_rate,
            seed=seed,
        )
        model_dir = work / f"sft_{name}"
        params = _finetune(cfg, seed, dynamics_every=cfg.finetune.max_steps)
        finetune.run(params, cfg.profile, data, cpt_dir, model_dir, work / f"reports/sft_{name}")
        after[name] = detect_on(model_dir, clean, cfg.ilp)
        write_json(work / f"after_{name}.json", after[name])

    variants = mitigate.sft_interventions(
        clean,
        rows,
        base,
        upsample=cfg.upsample,
        replay=cfg.replay,
        seed=seed,
        max_length=cfg.ilp.max_length,
    )
    for name, (train, schedule) in variants.items():
        if (work / f"after_{name}.json").is_file():
            after[name] = read_json(work / f"after_{name}.json")
            continue
        variant_data = mitigate.write_sft_data(data, work / f"data_{name}", train)
        model_dir = work / f"sft_{name}"
        params = _finetune(cfg, seed, schedule=schedule, dynamics_every=cfg.finetune.max_steps)
        finetune.run(
            params, cfg.profile, variant_data, base, model_dir, work / f"reports/sft_{name}"
        )
        after[name] = detect_on(model_dir, mitigate.originals(train), cfg.ilp)
        write_json(work / f"after_{name}.json", after[name])
    return after


def recovery(results: Sequence[dict[str, Any]], by: str = "planted") -> dict[str, Any]:
    """R[c, x]: fraction of cause-c records unlearned after plain SFT that are learned after x
    (mean and std over seeds, and the per-seed counts of records learned, which the page pools);
    rows by planted cause, or by diagnosed label with by='labels'."""
    table: dict[str, dict[str, list[float]]] = {c: {x: [] for x in INTERVENTIONS} for c in CAUSES}
    learned: dict[str, dict[str, list[int]]] = {c: {x: [] for x in INTERVENTIONS} for c in CAUSES}
    counts: dict[str, list[int]] = {c: [] for c in CAUSES}
    for result in results:
        for cause in CAUSES:
            ids = [i for i, u in result["unlearned"].items() if u and result[by][i] == cause]
            counts[cause].append(len(ids))
            for x in INTERVENTIONS:
                if x not in result.get("after", {}):
                    continue
                fixed = [not result["after"][x][i] for i in ids]
                learned[cause][x].append(sum(fixed))
                if ids:
                    table[cause][x].append(float(np.mean(fixed)))
    spreads = {c: {x: spread(v) for x, v in row.items()} for c, row in table.items()}
    return {
        "mean": {c: {x: s["mean"] for x, s in row.items()} for c, row in spreads.items()},
        "std": {c: {x: s["std"] for x, s in row.items()} for c, row in spreads.items()},
        "unlearned_records": counts,
        "recovered_records": learned,
    }


def spread(values: Sequence[float]) -> dict[str, float | None]:
    """Mean and sample std over seeds (`mean_std`); None where undefined (no value, or no std
    of a single one), so the JSON holds no NaN."""
    mean, std = mean_std(values)
    return {"mean": _finite(mean), "std": _finite(std)}


def _finite(value: float) -> float | None:
    return None if math.isnan(value) else value


def aggregate(results: Sequence[dict[str, Any]]) -> dict[str, Any]:
    groups = sorted({g for r in results for g in r["truth"]["unlearned_rate_by_planted"]})
    rates = {
        g: [r["truth"]["unlearned_rate_by_planted"].get(g, np.nan) for r in results] for g in groups
    }
    confusion = np.sum([r["truth"]["confusion"]["matrix"] for r in results], axis=0).tolist()
    f1 = {c: [r["truth"]["per_cause"][c]["f1"] for r in results] for c in CAUSES}
    macro_f1 = [r["truth"]["macro_f1"] for r in results]
    aggregate_ = {
        "seeds": [r["seed"] for r in results],
        "unlearned_rate": spread([r["summary"]["unlearned_rate"] for r in results]),
        "unlearned_rate_by_planted": {g: spread(v) for g, v in rates.items()},
        "confusion": {**results[0]["truth"]["confusion"], "matrix": confusion},
        "macro_f1": {**spread(macro_f1), "per_seed": macro_f1},
        "f1": {c: spread(v) for c, v in f1.items()},
        "per_cause": [r["truth"]["per_cause"] for r in results],
        "cause_counts": [r["summary"]["cause_counts"] for r in results],
        "run_facts": [
            {k: r["summary"][k] for k in ("tau_jsd", "early_late_gap", "c4_gate")} for r in results
        ],
    }
    if any("after" in r for r in results):
        aggregate_["recovery"] = recovery(results)
        aggregate_["recovery_by_diagnosis"] = recovery(results, by="labels")
        aggregate_["unlearned_rate_after"] = {
            x: float(np.mean([np.mean(list(r["after"][x].values())) for r in results]))
            for x in INTERVENTIONS
            if all(x in r["after"] for r in results)
        }
    return aggregate_


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m experiments.ilp.benchmark")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--work", type=Path, help="default: .cache/ilp_benchmark[_VARIANT]")
    parser.add_argument(
        "--stage-steps",
        choices=["even", "proportional"],
        default="even",
        help="SFT steps per stage; `proportional` is a variant with its own results section",
    )
    parser.add_argument("--no-interventions", action="store_true")
    parser.add_argument("--smoke", action="store_true", help="a few steps per stage (wiring)")
    parser.add_argument("--out", type=Path, default=REPO / "docs/results")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    cfg = (
        smoke_config(tuple(args.seeds)) if args.smoke else BenchmarkConfig(seeds=tuple(args.seeds))
    )
    if args.no_interventions:
        cfg = BenchmarkConfig(**{**cfg.__dict__, "interventions": False})
    variant = "" if args.stage_steps == "even" else args.stage_steps
    if variant:
        finetune_ = cfg.finetune.model_copy(update={"stage_steps": args.stage_steps})
        cfg = BenchmarkConfig(**{**cfg.__dict__, "finetune": finetune_})
    suffix = f"_{variant}" if variant else ""
    work = (args.work or REPO / f".cache/ilp_benchmark{suffix}").resolve()
    claim_work_dir(work, cfg)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    out = args.out.resolve()
    os.chdir(work)  # Trainer checkpoints land in the work folder, not the repo
    results = [run_seed(cfg, seed, work) for seed in cfg.seeds]
    summary = aggregate(results)
    config = config_dump(cfg)
    write_json(out / f"ilp_benchmark{suffix}.json", {"config": config, "aggregate": summary})
    report.write_benchmark_section(out, summary, variant)
    print(report.benchmark_tables(summary))
    return 0


def claim_work_dir(work: Path, cfg: BenchmarkConfig) -> None:
    """Stages found in ``work`` are reused, so they must come from this config: the first run
    records it in ``work/config.json``; a run with another config stops instead of mixing."""
    work.mkdir(parents=True, exist_ok=True)
    stamp = work / "config.json"
    config = {k: v for k, v in config_dump(cfg).items() if k not in ("seeds", "interventions")}
    if stamp.is_file():
        before = read_json(stamp)
        changed = sorted(k for k in config.keys() | before.keys() if config.get(k) != before.get(k))
        if changed:
            raise SystemExit(
                f"{work} holds stages of another benchmark config (differs in: "
                f"{', '.join(changed)}); delete it or pass --work to a new folder"
            )
    else:
        write_json(stamp, config)


def config_dump(cfg: BenchmarkConfig) -> dict[str, Any]:
    return {
        key: value.model_dump(mode="json")
        if hasattr(value, "model_dump")
        else list(value)
        if isinstance(value, tuple)
        else value
        for key, value in cfg.__dict__.items()
    }


if __name__ == "__main__":
    raise SystemExit(main())
