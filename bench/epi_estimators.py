"""EPI's [D] cheaper importance estimators: how far their masks are from the exact estimator's,
and what their optimizer step costs.

Masks: one short fine-tuning run per model, trained by EPI with the exact estimator (per-step
fp32 EMA). Beside it, one observing engine per option (``ema_every``, ``ema_dtype``) is fed the
same raw gradients at every step and refreshes at the same steps, so every option sees exactly
the gradient stream the exact estimator sees. At every refresh: the Jaccard of each option's
top-p mask with the exact one (chance level p / (2 - p)). Data: the project's synthetic SFT
records (components.data_prep, default settings) with SmolLM2's tokenizer and chat template.

Cost: each option's optimizer-step ratio to plain AdamW, measured by ``bench.epi_overhead``'s
``measure`` (same gradients, rotating order, refresh amortised over K); per-step ratios at K:
median, and mean with its 95 % t interval (experiments.stats).

    python -m bench.epi_estimators --models tiny,smollm2

Writes ``bench/results/epi_estimators.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python bench/epi_estimators.py`
    sys.path.insert(0, str(REPO_ROOT))

from bench import epi_overhead  # noqa: E402
from components.common.models import load_tokenizer, materialize_smollm2  # noqa: E402
from components.common.sft import encode_record, sft_collator  # noqa: E402
from components.epi_finetune.engine import ParameterIsolation  # noqa: E402
from components.epi_finetune.optimizer import build_isolating_optimizer  # noqa: E402
from components.epi_finetune.params import IsolationConfig  # noqa: E402
from experiments.report import table, write_results  # noqa: E402
from experiments.stats import Interval, mean_ci  # noqa: E402

RESULTS = REPO_ROOT / "bench" / "results"
# option name -> IsolationConfig fields; "exact" is the default estimator
OPTIONS: dict[str, dict[str, Any]] = {
    "exact": {},
    "every2": {"ema_every": 2},
    "every4": {"ema_every": 4},
    "bf16": {"ema_dtype": "bfloat16"},
    "bf16+every2": {"ema_dtype": "bfloat16", "ema_every": 2},
}
TARGET_RATIO, TARGET_JACCARD = 1.10, 0.8


@dataclass(frozen=True)
class Run:
    """One model's mask-agreement run: batch, steps, learning rate, p and K."""

    batch: int
    steps: int
    lr: float
    iso_ratio: float
    k: int


# p as in epi_overhead (LLM 1 %, tiny 5 %). Sized for a few minutes on a shared 2-core machine:
# tiny at K = 25; SmolLM2 (tens of seconds a step there at batch 4) a pilot at batch 1 and K = 10,
# half the EMA's window 1 / (1 - beta) = 20 steps, where subsampling the stream hurts most.
RUNS = {
    "tiny": Run(batch=16, steps=100, lr=1e-3, iso_ratio=0.05, k=25),
    "smollm2": Run(batch=1, steps=30, lr=1e-4, iso_ratio=0.01, k=10),
}


def option_config(base: IsolationConfig, option: str) -> IsolationConfig:
    return IsolationConfig.model_validate(base.model_dump() | OPTIONS[option])


def mask_jaccard(a: Sequence[Tensor], b: Sequence[Tensor]) -> float:
    """Jaccard of two masks given as per-tensor sorted flat indices."""
    inter = sum(int(torch.isin(x, y).sum()) for x, y in zip(a, b, strict=True))
    union = sum(x.numel() for x in a) + sum(y.numel() for y in b) - inter
    return inter / union if union else 1.0


# ---- masks ------------------------------------------------------------------------------------
def sft_batches(tokenizer: Any, batch: int, steps: int, seed: int) -> list[dict[str, Tensor]]:
    """``steps`` batches of the synthetic SFT records, shuffled, collated as finetune does."""
    from components.data_prep.params import DataPrepParams
    from components.data_prep.step import synthetic_splits

    records, _, _ = synthetic_splits(DataPrepParams())
    random.Random(seed).shuffle(records)
    features = [encode_record(tokenizer, r, 96) for r in records]
    collate = sft_collator(tokenizer)
    order = [features[i % len(features)] for i in range(batch * steps)]
    return [collate(order[i : i + batch]) for i in range(0, len(order), batch)]


def mask_agreement(name: str, run: Run, args: argparse.Namespace) -> dict[str, Any]:
    """Train with the exact estimator; per option, the Jaccard with its mask at every refresh."""
    tokenizer = load_tokenizer(materialize_smollm2(args.cache_dir))
    model, _, _ = epi_overhead.build_model(name, args.cache_dir, tiny_vocab=len(tokenizer))
    model.train()
    base = IsolationConfig(iso_ratio=run.iso_ratio, mask_interval=run.k)
    trainer = build_isolating_optimizer(
        model,
        base,
        lr=run.lr,
        weight_decay=epi_overhead.WEIGHT_DECAY,
        max_grad_norm=epi_overhead.MAX_GRAD_NORM,
    )
    # "exact" observes too: a Jaccard of 1 at every refresh checks that the comparison is exact
    observers = {
        option: ParameterIsolation(model, option_config(base, option)) for option in OPTIONS
    }
    refreshes: list[dict[str, Any]] = []
    started = time.perf_counter()
    for step, batch in enumerate(sft_batches(tokenizer, run.batch, run.steps, seed=0), 1):
        loss = model(**batch).loss
        loss.backward()
        for engine in observers.values():  # raw gradients, before the optimizer clips them
            engine.accumulate()
            engine.maybe_refresh()
        trainer.step()
        trainer.zero_grad(set_to_none=True)
        if trainer.engine.n_refresh > len(refreshes):
            exact = trainer.engine.indices
            refreshes.append(
                {"step": step, "loss": loss.item()}
                | {o: mask_jaccard(e.indices, exact) for o, e in observers.items()}
            )
            print(f"  {name} step {step}: {refreshes[-1]}", file=sys.stderr, flush=True)
    return {
        "model": name,
        "run": asdict(run),
        "n_eligible": trainer.engine.n_eligible,
        "jaccard_random": run.iso_ratio / (2 - run.iso_ratio),
        "seconds": time.perf_counter() - started,
        "refreshes": refreshes,
        "jaccard": {
            o: {
                "mean": statistics.fmean(r[o] for r in refreshes),
                "min": min(r[o] for r in refreshes),
            }
            for o in observers
        },
    }


# ---- cost -------------------------------------------------------------------------------------
def step_cost(name: str, iso_ratio: float, args: argparse.Namespace) -> list[dict[str, Any]]:
    """epi_overhead's measurement with one EPI optimizer per option."""
    configs = {
        option: option_config(
            IsolationConfig(iso_ratio=iso_ratio, mask_interval=args.refresh_every, warmup_steps=1),
            option,
        )
        for option in OPTIONS
    }
    results = epi_overhead.measure(
        name, args, [args.k], lambda m: print(m, file=sys.stderr, flush=True), configs
    )
    for r in results:
        r["ratio_ci"] = {clock: ratio_interval(r, clock, args.k) for clock in ("wall", "cpu")}
    return results


def ratio_interval(result: dict[str, Any], clock: str, k: int) -> list[float]:
    """Mean [95 % CI] of the per-step ratios (EPI + t_refresh / K) / AdamW, non-refresh steps."""
    refresh_s = (result[clock]["refresh_ms"] or 0.0) / 1e3
    ratios = [
        (r[clock]["epi"] + refresh_s / k) / r[clock]["base"]
        for r in result["rows"]
        if not r["refresh"] and r[clock]["base"] > 0
    ]
    ci = mean_ci(ratios)
    return [ci.estimate, ci.low, ci.high]


# ---- report -----------------------------------------------------------------------------------
def markdown(masks: list[dict], costs: list[dict], meta: dict[str, Any]) -> str:
    k = meta["k"]
    mask_rows = [
        [
            m["model"],
            f"{m['run']['iso_ratio']}",
            m["run"]["k"],
            f"{m['run']['batch']} x {m['run']['steps']}",
            len(m["refreshes"]),
            option,
            f"{m['jaccard'][option]['mean']:.3f}",
            f"{m['jaccard'][option]['min']:.3f}",
            f"{m['jaccard_random']:.3f}",
        ]
        for m in masks
        for option in m["jaccard"]
    ]
    cost_rows = []
    for r in costs:
        for clock in ("wall", "cpu"):
            c = r[clock]
            cost_rows.append(
                [
                    r["model"],
                    r["iso_ratio"],
                    r["config"],
                    clock,
                    f"{r['cpu_share']:.2f}",
                    f"{r['breakdown_cpu_ms']['accumulate']:.2f}",
                    f"{c['adamw_ms']:.1f}",
                    f"{c['epi_ms']:.1f}",
                    f"{c['ratio_k'][str(k)]:.3f}",
                    Interval(*r["ratio_ci"][clock]).format(3),
                    f"{r['persistent_bytes_per_param']:.2f}",
                ]
            )
    return "\n".join(
        [
            "# EPI importance estimators: mask agreement and optimizer-step cost",
            "",
            f"{meta['when']} · torch {meta['torch']} · {meta['threads']} threads · {meta['cpu']}"
            f" · load (1/5/15 min) {meta['load_start']} at the start, {meta['load_end']} at the"
            f" end · command: `{meta['command']}`",
            "",
            "## Masks against the exact estimator (same gradient stream)",
            "",
            "Jaccard of each option's top-p mask with the exact estimator's at every refresh of "
            "one fine-tuning run (batch x steps; the run trains with the exact estimator); "
            "chance = two random p-masks.",
            "",
            table(
                ["model", "p", "K", "batch x steps", "refreshes", "option", "mean J", "min J"]
                + ["chance J"],
                mask_rows,
            ),
            "",
            "## Optimizer step against AdamW",
            "",
            f"`bench.epi_overhead`'s measurement ({meta['steps']} timed steps, refresh every "
            f"{meta['refresh_every']}, amortised at K = {k}); accumulate = median CPU ms of "
            "the EMA update; bytes = persistent engine bytes per eligible parameter.",
            "",
            table(
                ["model", "p", "option", "clock", "CPU share", "accumulate ms", "AdamW ms"]
                + ["EPI ms", f"ratio K={k} median", f"mean [95 % CI] K={k}", "bytes"],
                cost_rows,
            ),
            "",
            f"Targets for the best option: optimizer step <= {TARGET_RATIO} and mean mask "
            f"Jaccard >= {TARGET_JACCARD}.",
            "",
        ]
    )


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """Saved runs as one: their masks and costs; the first one's settings, every command, and
    the load from the first start to the last end."""
    meta = parts[0]["meta"] | {
        "command": "` ; `".join(p["meta"]["command"] for p in parts),
        "load_end": parts[-1]["meta"]["load_end"],
    }
    return {
        "meta": meta,
        "masks": [m for p in parts for m in p["masks"]],
        "costs": [c for p in parts for c in p["costs"]],
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default="tiny,smollm2")
    parser.add_argument("--cost-models", default="tiny,smollm2,smollm2-lora")
    parser.add_argument("--k", type=int, default=50, help="mask interval for the cost")
    parser.add_argument("--threads", type=int, default=2)
    # bench.epi_overhead's measurement settings
    parser.add_argument("--steps", type=int, default=40, help="timed step pairs per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first backwards")
    parser.add_argument("--repeats", type=int, default=4, help="paired steps per backward")
    parser.add_argument("--refresh-every", type=int, default=10, help="refresh samples' spacing")
    parser.add_argument("--profile-steps", type=int, default=4)
    parser.add_argument("--cache-dir", default=str(REPO_ROOT / ".cache" / "smollm2"))
    parser.add_argument("--out", default=str(RESULTS / "epi_estimators"))
    parser.add_argument(
        "--from-json", nargs="+", help="render saved runs (e.g. masks and costs run apart) as one"
    )
    args = parser.parse_args(argv)
    out = Path(args.out)
    if args.from_json:
        parts = [json.loads(Path(p).read_text()) for p in args.from_json]
        saved = merge(parts)
        page = markdown(saved["masks"], saved["costs"], saved["meta"])
        print(page)
        write_results(out, page, saved)
        return 0
    torch.set_num_threads(args.threads)
    load_start = os.getloadavg()
    masks = [mask_agreement(m, RUNS[m], args) for m in args.models.split(",") if m]
    costs = []
    for name in (m for m in args.cost_models.split(",") if m):
        iso_ratio = RUNS.get(name, RUNS["smollm2"]).iso_ratio  # LoRA: SmolLM2's p
        costs += step_cost(name, iso_ratio, args)
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "torch": torch.__version__,
        "threads": args.threads,
        "cpu": f"{platform.machine()} x{os.cpu_count()}",
        "load_start": [round(x, 2) for x in load_start],
        "load_end": [round(x, 2) for x in os.getloadavg()],
        "k": args.k,
        "steps": args.steps,
        "refresh_every": args.refresh_every,
        "command": "python -m bench.epi_estimators " + " ".join(argv or sys.argv[1:]),
    }
    page = markdown(masks, costs, meta)
    print(page)
    write_results(out, page, {"meta": meta, "masks": masks, "costs": costs})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
