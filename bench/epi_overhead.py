"""EPI optimizer-step overhead vs plain AdamW, measured side by side in one run.

For each model, ONE model gets two optimizers over the same parameters: plain AdamW (clip + step)
and ``IsolatingOptimizer`` around an identical AdamW (its ``step()``: accumulate EMA, clip, maybe
refresh, protect, AdamW, restore). Every iteration runs one forward/backward (not timed), then
both optimizer steps on the same gradients, in alternating order (ABBA: cache warmth and machine
noise fall on both equally). Ratios are medians of the per-iteration paired ratios.

Refresh cost: the engine refreshes every ``--refresh-every`` timed steps inside ``step()``; the
extra time of those steps over the median plain EPI step is the refresh cost, amortised as
t_refresh / K for each K in ``--k``. Warm-up iterations (Adam state creation, first mask) are
excluded.

    python -m bench.epi_overhead --steps 30 --k 50,100 --models tiny,smollm2,smollm2-lora

Writes ``bench/results/epi_overhead.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from torch import nn

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python bench/epi_overhead.py`
    sys.path.insert(0, str(REPO_ROOT))

from components.epi_finetune.optimizer import (  # noqa: E402
    IsolatingOptimizer,
    build_isolating_optimizer,
)
from components.epi_finetune.params import IsolationConfig  # noqa: E402
from experiments.report import table, write_results  # noqa: E402

MODELS = ("tiny", "smollm2", "smollm2-lora")
RESULTS = REPO_ROOT / "bench" / "results"
LR, WEIGHT_DECAY, MAX_GRAD_NORM = 1e-4, 0.01, 1.0
TARGET_RATIO, TARGET_BYTES = 1.10, 5.0


# ---- models -----------------------------------------------------------------------------------
def build_model(
    name: str, cache_dir: str, tiny_vocab: int = 512
) -> tuple[nn.Module, int, tuple[int, int]]:
    """The model, its vocabulary size and the (batch, sequence) shape of its batches."""
    from transformers import LlamaConfig, LlamaForCausalLM

    if name == "tiny":
        torch.manual_seed(0)
        config = LlamaConfig(
            vocab_size=tiny_vocab,
            hidden_size=128,
            intermediate_size=256,
            num_hidden_layers=4,
            num_attention_heads=4,
            num_key_value_heads=4,
            max_position_embeddings=128,
        )
        return LlamaForCausalLM(config), tiny_vocab, (8, 64)
    from components.common.models import load_causal_lm, materialize_smollm2

    model, _ = load_causal_lm(materialize_smollm2(cache_dir))
    if name == "smollm2-lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=8,
            lora_alpha=16,
            lora_dropout=0.0,
            target_modules=["q_proj", "k_proj", "v_proj", "o_proj"],
        )
        model = get_peft_model(model, lora)
    return model, model.config.vocab_size, (1, 64)


def plain_adamw(model: nn.Module) -> torch.optim.AdamW:
    """The same groups and hyperparameters as ``build_isolating_optimizer``'s inner AdamW."""
    trainable = [p for p in model.parameters() if p.requires_grad]
    groups = [
        {"params": [p for p in trainable if p.ndim >= 2], "weight_decay": WEIGHT_DECAY},
        {"params": [p for p in trainable if p.ndim < 2], "weight_decay": 0.0},
    ]
    return torch.optim.AdamW([g for g in groups if g["params"]], lr=LR)


def plain_step(adamw: torch.optim.Optimizer) -> None:
    """Clip + AdamW, the same work ``IsolatingOptimizer.step`` does around the EPI parts."""
    params = [p for g in adamw.param_groups for p in g["params"] if p.grad is not None]
    nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)
    adamw.step()


def _timed(fn: Callable[[], Any]) -> tuple[float, float]:
    """Wall and process CPU seconds of one call (CPU time: all threads; robust to preemption)."""
    w0, c0 = time.perf_counter(), time.process_time()
    fn()
    return time.perf_counter() - w0, time.process_time() - c0


# ---- measurement ------------------------------------------------------------------------------
def measure(
    name: str,
    args: argparse.Namespace,
    ks: list[int],
    log: Callable[[str], None],
    configs: dict[str, IsolationConfig] | None = None,
) -> list[dict[str, Any]]:
    """One model, plain AdamW and one EPI optimizer per config (default: per isolation ratio),
    all stepped on the same gradients in rotating order; one result per config."""
    model, vocab, (batch, seq) = build_model(name, args.cache_dir)
    model.train()
    n_trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    configs = configs or {
        f"p={p}": IsolationConfig(iso_ratio=p, mask_interval=args.refresh_every, warmup_steps=1)
        for p in args.ratios
    }
    epis = {
        key: build_isolating_optimizer(
            model, config, lr=LR, weight_decay=WEIGHT_DECAY, max_grad_norm=MAX_GRAD_NORM
        )
        for key, config in configs.items()
    }
    base = plain_adamw(model)
    steps: dict[str, Callable[[], Any]] = {"base": lambda: plain_step(base)}
    steps |= {key: opt.step for key, opt in epis.items()}
    gen = torch.Generator().manual_seed(0)

    def backward() -> None:
        ids = torch.randint(vocab, (batch, seq), generator=gen)
        model(input_ids=ids, labels=ids).loss.backward()

    rows: dict[str, list[dict[str, Any]]] = {key: [] for key in epis}
    names, total = list(steps), args.warmup + math.ceil(args.steps / args.repeats)
    for it in range(total):
        backward()
        for rep in range(args.repeats):  # more paired samples per (untimed) backward
            shift = (it * args.repeats + rep) % len(names)
            before = {key: len(opt.engine.history) for key, opt in epis.items()}
            wall, cpu = {}, {}
            for which in names[shift:] + names[:shift]:  # rotating order
                wall[which], cpu[which] = _timed(steps[which])
            if it < args.warmup:
                continue
            for key, opt in epis.items():
                rows[key].append(
                    {
                        "it": it,
                        "refresh": len(opt.engine.history) > before[key],
                        "wall": {"base": wall["base"], "epi": wall[key]},
                        "cpu": {"base": cpu["base"], "epi": cpu[key]},
                    }
                )
        model.zero_grad(set_to_none=True)
        if it % 10 == 0 or it == total - 1:
            ms = ", ".join(f"{k} {v * 1e3:.1f}" for k, v in wall.items())
            log(f"  {name} {it + 1}/{total} (wall ms): {ms}")
    results = []
    for key, opt in epis.items():
        engine, config = opt.engine, configs[key]
        plain = [r for r in rows[key] if not r["refresh"]]
        results.append(
            {
                "model": name,
                "config": key,
                "iso_ratio": config.iso_ratio,
                "n_trainable": n_trainable,
                "n_eligible": engine.n_eligible,
                "n_eligible_tensors": len(engine.params),
                "n_isolated": engine.n_isolated,
                "timed_steps": len(plain),
                "refresh_samples": len(rows[key]) - len(plain),
                "cpu_share": cpu_share(plain),
                "wall": summarise(rows[key], "wall", ks),
                "cpu": summarise(rows[key], "cpu", ks),
                "persistent_bytes_per_param": engine.memory_bytes() / engine.n_eligible,
                "step_transient_bytes_per_param": engine.step_transient_bytes() / engine.n_eligible,
                "refresh_transient_bytes_per_param": refresh_transient_bytes(engine, config)
                / engine.n_eligible,
                "breakdown_cpu_ms": profile_parts(opt, backward, model, args.profile_steps),
                "rows": rows[key],
            }
        )
    return results


def cpu_share(rows: list[dict[str, Any]]) -> float:
    """CPU time / wall time over all timed steps of both optimizers; far below 1 = preempted."""
    cpu = sum(r["cpu"]["base"] + r["cpu"]["epi"] for r in rows)
    return cpu / sum(r["wall"]["base"] + r["wall"]["epi"] for r in rows)


def summarise(rows: list[dict[str, Any]], clock: str, ks: list[int]) -> dict[str, Any]:
    """Medians and paired ratios for one clock ("wall" or "cpu")."""
    plain = [r[clock] for r in rows if not r["refresh"]]
    refresh = [r[clock] for r in rows if r["refresh"]]
    epi = statistics.median(t["epi"] for t in plain)
    refresh_s = max(0.0, statistics.median(t["epi"] for t in refresh) - epi) if refresh else 0.0
    pair = sorted(t["epi"] / t["base"] for t in plain if t["base"] > 0)
    return {
        "adamw_ms": statistics.median(t["base"] for t in plain) * 1e3,
        "epi_ms": epi * 1e3,
        "refresh_ms": refresh_s * 1e3 if refresh else None,
        "ratio_no_refresh": statistics.median(pair),
        "ratio_iqr": [pair[len(pair) // 4], pair[(3 * len(pair)) // 4]],
        "ratio_k": {
            str(k): statistics.median(
                (t["epi"] + refresh_s / k) / t["base"] for t in plain if t["base"] > 0
            )
            for k in ks
        },
    }


def profile_parts(
    opt: IsolatingOptimizer, backward: Callable[[], None], model: nn.Module, steps: int
) -> dict[str, float]:
    """Median CPU ms of each part of ``IsolatingOptimizer.step`` (the same calls, timed apart)."""
    engine, parts = opt.engine, defaultdict(list)
    params = [p for g in opt.param_groups for p in g["params"]]
    for _ in range(steps):
        backward()
        if engine.due(engine.step + 1):
            engine.accumulate()  # keep refreshes out of the profile
            model.zero_grad(set_to_none=True)
            continue
        calls = (
            ("accumulate", engine.accumulate),
            ("clip", lambda: nn.utils.clip_grad_norm_(params, MAX_GRAD_NORM)),
            ("protect", opt.protect_before_step),
            ("adamw", opt.optimizer.step),
            ("restore", opt.restore_after_step),
        )
        for part, fn in calls:
            parts[part].append(_timed(fn)[1])  # CPU time: robust to preemption
        model.zero_grad(set_to_none=True)
    return {k: statistics.median(v) * 1e3 for k, v in parts.items()}


def refresh_transient_bytes(engine: Any, config: IsolationConfig) -> int:
    """Estimate of the bytes a refresh holds briefly (normalised scores and selection buffers)."""
    n, k = engine.n_eligible, round(config.iso_ratio * engine.n_eligible)
    largest = max(p.numel() for p in engine.params)
    one_tensor = 8 * largest  # its normalised scores and a temporary
    if n <= config.exact_quantile_max_elements:
        selection = 4 * n + one_tensor + 12 * k + 16 * k  # flat scores, topk, sort
    else:  # samples (+ their indices, concatenation, kthvalue copy), then per tensor >= tau
        selection = 20 * min(config.quantile_sample_size, n) + one_tensor + largest
    return selection + 8 * k + 17 * k  # int64 indices; membership, positions, ages


# ---- report -----------------------------------------------------------------------------------
STEP_PARTS = ("accumulate", "clip", "protect", "adamw", "restore")


def timing_table(results: list[dict[str, Any]], ks: list[int]) -> str:
    """Per model, p and clock: step times, refresh cost and the EPI/AdamW ratios."""
    header = ["model", "p", "eligible params (tensors)", "clock", "CPU share", "AdamW ms"]
    header += ["EPI ms", "refresh ms", "ratio no refresh [IQR]", *(f"ratio K={k}" for k in ks)]
    rows = []
    for r in results:
        for clock in ("wall", "cpu"):
            c = r[clock]
            lo, hi = c["ratio_iqr"]
            rows.append(
                [
                    r["model"],
                    r["iso_ratio"],
                    f"{r['n_eligible']:,} ({r['n_eligible_tensors']})",
                    clock,
                    f"{r['cpu_share']:.2f}",
                    f"{c['adamw_ms']:.1f}",
                    f"{c['epi_ms']:.1f}",
                    "n/a" if c["refresh_ms"] is None else f"{c['refresh_ms']:.1f}",
                    f"{c['ratio_no_refresh']:.3f} [{lo:.3f}, {hi:.3f}]",
                    *(f"{c['ratio_k'][str(k)]:.3f}" for k in ks),
                ]
            )
    return table(header, rows)


def markdown(results: list[dict[str, Any]], ks: list[int], meta: dict[str, Any]) -> str:
    lines = [
        "# EPI optimizer-step overhead vs AdamW",
        "",
        f"{meta['when']} · torch {meta['torch']} · {meta['threads']} threads · "
        f"{meta['cpu']} · {meta['steps']} timed steps per optimizer, "
        f"{meta['repeats']} per backward (+{meta['warmup']} warm-up backwards) · "
        f"refresh every {meta['refresh_every']} steps · command: `{meta['command']}`",
        "",
        "Medians of the optimizer-step time (ms) and of the paired per-step EPI/AdamW ratios "
        "(both steps on the same gradients, alternating order), refresh cost amortised over K. "
        "Wall time is the target's measure; CPU time (process, all threads) is robust to "
        "preemption: where the CPU share (CPU/wall time over all timed steps) is well below 1, "
        "the machine was busy and the wall-time ratios are mostly scheduler noise.",
        "",
        timing_table(results, ks),
        "",
        "Memory per eligible parameter (bytes): persistent = `engine.memory_bytes() / "
        "n_eligible`; step transient = int64 indices + saved values held during a step; "
        "refresh transient = estimate of the buffers a refresh holds briefly.",
        "",
        table(
            ["model", "p", "persistent", "step transient", "refresh transient (est.)"],
            (
                [
                    r["model"],
                    r["iso_ratio"],
                    f"{r['persistent_bytes_per_param']:.3f}",
                    f"{r['step_transient_bytes_per_param']:.3f}",
                    f"{r['refresh_transient_bytes_per_param']:.1f}",
                ]
                for r in results
            ),
        ),
        "",
        "One EPI step taken apart (median CPU ms per part):",
        "",
        table(
            ["model", "p", *STEP_PARTS],
            (
                [
                    r["model"],
                    r["iso_ratio"],
                    *(f"{r['breakdown_cpu_ms'][part]:.2f}" for part in STEP_PARTS),
                ]
                for r in results
            ),
        ),
    ]
    lines += ["", f"Targets: ratio <= {TARGET_RATIO} at K >= 50; persistent <= {TARGET_BYTES} B."]
    for clock in ("wall", "cpu"):
        misses = [
            f"{r['model']} p={r['iso_ratio']} K={k}: {r[clock]['ratio_k'][str(k)]:.3f}"
            for r in results
            for k in ks
            if k >= 50 and r[clock]["ratio_k"][str(k)] > TARGET_RATIO
        ]
        lines.append(f"- {clock} time: " + ("missed: " + "; ".join(misses) if misses else "met"))
    over = [
        f"{r['model']} p={r['iso_ratio']}"
        for r in results
        if r["persistent_bytes_per_param"] > TARGET_BYTES
    ]
    lines.append("- memory: " + ("missed: " + ", ".join(over) if over else "met"))
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--steps", type=int, default=60, help="timed step pairs per model")
    parser.add_argument("--warmup", type=int, default=2, help="untimed first backwards")
    parser.add_argument("--repeats", type=int, default=4, help="paired steps per backward")
    parser.add_argument("--k", default="50,100", help="mask intervals to amortise refresh over")
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument(
        "--iso-ratio", default="0.01,0.05", help="isolation ratios p (LLM 0.01, tiny 0.05)"
    )
    parser.add_argument("--refresh-every", type=int, default=10, help="refresh samples' spacing")
    parser.add_argument("--profile-steps", type=int, default=6)
    parser.add_argument("--cache-dir", default=str(REPO_ROOT / ".cache" / "smollm2"))
    parser.add_argument("--out", default=str(RESULTS / "epi_overhead"))
    parser.add_argument("--from-json", help="re-render the tables of a saved run, no measuring")
    args = parser.parse_args(argv)
    ks = [int(k) for k in args.k.split(",") if k]
    args.ratios = [float(p) for p in args.iso_ratio.split(",") if p]
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(MODELS)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; choose from {MODELS}")
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        for r in saved["results"]:
            r["cpu_share"] = cpu_share([row for row in r["rows"] if not row["refresh"]])
        page = markdown(saved["results"], [int(k) for k in args.k.split(",") if k], saved["meta"])
        print(page, end="")
        write_results(Path(args.out), page, saved)
        return 0
    torch.set_num_threads(args.threads)

    def log(msg: str) -> None:
        print(msg, file=sys.stderr, flush=True)

    results = []
    for name in models:
        log(f"measuring {name} ...")
        results += measure(name, args, ks, log)
    meta = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "torch": torch.__version__,
        "threads": args.threads,
        "cpu": f"{platform.machine()} x{os.cpu_count()}",
        "iso_ratios": args.ratios,
        "steps": args.steps,
        "warmup": args.warmup,
        "repeats": args.repeats,
        "refresh_every": args.refresh_every,
        "command": "python -m bench.epi_overhead " + " ".join(argv or sys.argv[1:]),
    }
    page = markdown(results, ks, meta)
    print(page)
    write_results(Path(args.out), page, {"meta": meta, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
