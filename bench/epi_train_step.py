"""EPI training-step cost vs plain fine-tuning: what a user pays, measured side by side in one run.

For each model, two ``transformers.Trainer`` instances built by the finetune step's own
``build_trainer`` (components/epi_finetune/step.py): plain (Trainer's AdamW, ``method=full``
without drift tracking) and EPI (``IsolatingOptimizer`` + ``attach_isolation``, clipping inside the
optimizer step). Both start from the same weights and read the same batches in the same order
(fixed-length random token sequences, loss on every token). Each trainer runs ``train()`` in its
own thread; a callback lets exactly one of them run a step at a time, in ABBA order (step i of
both is a pair, the pair's order alternating), and times each step from ``on_step_begin`` to
``on_step_end``: forward, backward, clipping, optimizer, scheduler, zero_grad. The waiting
trainer's batch loading and logging happen outside the other's timed step.

Refresh cost: EPI refreshes every ``--refresh-every`` steps; the refresh cost is the median paired
difference (EPI - plain) of the steps that refreshed minus that of the steps that did not,
amortised as t_refresh / K. Per-step ratios (EPI + t_refresh / K) / plain over the non-refresh
pairs: median, and mean with its 95 % t interval (experiments.stats). Warm-up pairs are excluded.

    python -m bench.epi_train_step --models tiny,smollm2,smollm2-lora

Writes ``bench/results/epi_train_step.md`` and ``.json``.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from transformers import TrainerCallback

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:  # `python bench/epi_train_step.py`
    sys.path.insert(0, str(REPO_ROOT))

from components.epi_finetune.params import FinetuneParams, IsolationConfig  # noqa: E402
from experiments.report import table, write_results  # noqa: E402
from experiments.stats import Interval, mean_ci, threshold_verdict  # noqa: E402

MODELS = ("tiny", "smollm2", "smollm2-lora")
RESULTS = REPO_ROOT / "bench" / "results"
TARGET_RATIO = 1.05
VARIANTS = ("plain", "epi")


@dataclass(frozen=True)
class Setup:
    """A model's batch (sequences x tokens) and how many timed step pairs it gets."""

    batch: int
    seq: int
    pairs: int


# tiny: the finetune step's own batch (params.yaml: 32 x max_length 96). SmolLM2: 4 x 128 tokens,
# a CPU-sized micro-batch (a 2-core step takes seconds); a larger batch only shrinks EPI's share.
SETUPS = {
    "tiny": Setup(batch=32, seq=96, pairs=80),
    "smollm2": Setup(batch=4, seq=128, pairs=16),
    "smollm2-lora": Setup(batch=4, seq=128, pairs=16),
}


# ---- running two Trainers one step at a time --------------------------------------------------
class Turns:
    """Lets threads run one at a time, in a fixed order of names."""

    def __init__(self, order: list[str]) -> None:
        self._order, self._next = order, 0
        self._cond = threading.Condition()
        self._aborted = False

    def begin(self, who: str) -> None:
        with self._cond:
            self._cond.wait_for(lambda: self._aborted or self._order[self._next] == who)
            if self._aborted:
                raise RuntimeError("the other trainer failed")

    def end(self) -> None:
        with self._cond:
            self._next += 1
            self._cond.notify_all()

    def abort(self) -> None:
        with self._cond:
            self._aborted = True
            self._cond.notify_all()


def abba_order(pairs: int) -> list[str]:
    """plain epi, epi plain, plain epi, ...: step i of both trainers, order alternating."""
    return [v for i in range(pairs) for v in (VARIANTS if i % 2 == 0 else VARIANTS[::-1])]


class StepClock(TrainerCallback):
    """Times each optimizer step of one trainer (wall and process CPU), taking turns.

    The turn passes on at the next ``on_step_begin`` (or the end of training), so this trainer's
    batch loading and logging never overlap the other's timed step."""

    def __init__(self, name: str, turns: Turns, engine: Any = None) -> None:
        self.name, self.turns, self.engine = name, turns, engine
        self.steps: list[dict[str, Any]] = []
        self._holding = False
        self._start = (0.0, 0.0)
        self._refreshes = 0

    def _pass_turn(self) -> None:
        if self._holding:
            self._holding = False
            self.turns.end()

    def on_step_begin(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._pass_turn()
        self.turns.begin(self.name)
        self._holding = True
        self._refreshes = self.engine.n_refresh if self.engine else 0
        self._start = (time.perf_counter(), time.process_time())

    def on_step_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        wall, cpu = time.perf_counter() - self._start[0], time.process_time() - self._start[1]
        refreshed = bool(self.engine and self.engine.n_refresh > self._refreshes)
        self.steps.append({"wall": wall, "cpu": cpu, "refresh": refreshed})

    def on_train_end(self, args: Any, state: Any, control: Any, **kwargs: Any) -> None:
        self._pass_turn()


def random_features(vocab: int, setup: Setup, n: int, seed: int) -> list[dict[str, list[int]]]:
    """``n`` fixed-length sequences of random tokens, loss on every token (no padding)."""
    gen = torch.Generator().manual_seed(seed)
    ids = torch.randint(vocab, (n, setup.seq), generator=gen).tolist()
    return [{"input_ids": x, "attention_mask": [1] * setup.seq, "labels": x} for x in ids]


def finetune_params(method: str, setup: Setup, steps: int, isolation: IsolationConfig) -> Any:
    return FinetuneParams(
        method=method,
        track_drift=False,  # plain: Trainer's own AdamW, no engine at all
        isolation=isolation,
        max_steps=steps,
        batch_size=setup.batch,
        max_length=setup.seq,
        logging_steps=10**6,
        save_steps=10**6,
    )


def run_pair(
    name: str, setup: Setup, args: argparse.Namespace, out_dir: Path
) -> dict[str, list[dict[str, Any]]]:
    """Train plain and EPI side by side, one step at a time; the timed steps of each."""
    # the finetune step's modules (MLflow, models) only when measuring
    from bench.epi_overhead import build_model
    from components.common.models import load_tokenizer, materialize_smollm2
    from components.epi_finetune.methods import isolation_config
    from components.epi_finetune.schedule import TrainingPlan
    from components.epi_finetune.step import build_trainer
    from components.epi_finetune.trainer_hooks import attach_isolation, find_isolating_optimizer

    model, vocab, _ = build_model(name, args.cache_dir)
    tokenizer = load_tokenizer(materialize_smollm2(args.cache_dir))  # collator only: no padding
    steps = args.warmup + setup.pairs
    features = random_features(vocab, setup, steps * setup.batch, seed=0)
    plan = TrainingPlan(list(range(len(features))), [0] * steps, [None] * steps, [("random",)])
    isolation = IsolationConfig(
        iso_ratio=args.iso_ratio, mask_interval=args.refresh_every, warmup_steps=1
    )
    turns = Turns(abba_order(steps))
    clocks, trainers = {}, {}
    for variant in VARIANTS:
        params = finetune_params("full" if variant == "plain" else "epi", setup, steps, isolation)
        trainer = build_trainer(
            params,
            isolation_config(params),
            copy.deepcopy(model),
            tokenizer,
            features,
            plan,
            out_dir / variant,
        )
        trainer.args.report_to, trainer.args.save_strategy = [], "no"
        trainer.args.disable_tqdm = True
        engine = attach_isolation(trainer).engine if variant == "epi" else None
        clocks[variant] = StepClock(variant, turns, engine)
        trainer.add_callback(clocks[variant])
        trainers[variant] = trainer
    del model
    errors: list[BaseException] = []

    def train(variant: str) -> None:
        try:
            trainers[variant].train()
        except BaseException as exc:  # noqa: BLE001 - re-raised in the main thread
            errors.append(exc)
            turns.abort()

    threads = [threading.Thread(target=train, args=(v,)) for v in VARIANTS]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    if errors:
        raise errors[0]
    epi = find_isolating_optimizer(trainers["epi"].optimizer)
    assert epi is not None and epi.engine.n_refresh > 0, "EPI never refreshed"
    return {v: clocks[v].steps[args.warmup :] for v in VARIANTS}


# ---- statistics -------------------------------------------------------------------------------
def paired_rows(steps: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Step i of both trainers as one row: wall and CPU seconds of each, and EPI's refresh flag."""
    return [
        {clock: {"plain": plain[clock], "epi": epi[clock]} for clock in ("wall", "cpu")}
        | {"refresh": epi["refresh"]}
        for plain, epi in zip(steps["plain"], steps["epi"], strict=True)
    ]


def refresh_cost(rows: list[dict[str, Any]], clock: str) -> float | None:
    """Extra seconds of a refresh: median paired difference of the refresh steps minus that of
    the others (the pairing cancels the load both steps saw)."""
    diff = {
        flag: [r[clock]["epi"] - r[clock]["plain"] for r in rows if r["refresh"] is flag]
        for flag in (True, False)
    }
    if not diff[True] or not diff[False]:
        return None
    return max(0.0, statistics.median(diff[True]) - statistics.median(diff[False]))


def amortised_ratios(rows: list[dict[str, Any]], clock: str, refresh_s: float, k: int) -> list:
    """Per non-refresh pair, (EPI + t_refresh / K) / plain."""
    return [
        (r[clock]["epi"] + refresh_s / k) / r[clock]["plain"]
        for r in rows
        if not r["refresh"] and r[clock]["plain"] > 0
    ]


def summarise(rows: list[dict[str, Any]], clock: str, k: int) -> dict[str, Any]:
    plain = [r[clock] for r in rows if not r["refresh"]]
    refresh_s = refresh_cost(rows, clock)
    ratios = amortised_ratios(rows, clock, refresh_s or 0.0, k)
    interval = mean_ci(ratios)
    return {
        "plain_ms": statistics.median(t["plain"] for t in plain) * 1e3,
        "epi_ms": statistics.median(t["epi"] for t in plain) * 1e3,
        "refresh_ms": None if refresh_s is None else refresh_s * 1e3,
        "ratio_no_refresh_median": statistics.median(t["epi"] / t["plain"] for t in plain),
        "ratio_median": statistics.median(ratios),
        "ratio_mean_ci": [interval.estimate, interval.low, interval.high],
        "verdict": threshold_verdict(interval, TARGET_RATIO, greater=False),
        "n_pairs": len(ratios),
    }


def cpu_share(rows: list[dict[str, Any]]) -> float:
    """Process CPU / wall time over all timed steps; near the thread count = not preempted."""
    cpu = sum(sum(r["cpu"].values()) for r in rows)
    return cpu / sum(sum(r["wall"].values()) for r in rows)


# ---- report -----------------------------------------------------------------------------------
def markdown(results: list[dict[str, Any]], meta: dict[str, Any]) -> str:
    k = meta["k"]
    header = ["model", "batch x seq", "clock", "CPU share", "load (1 min)", "plain ms", "EPI ms"]
    header += ["refresh ms", "ratio no refresh", f"ratio K={k} median", f"mean [95 % CI] K={k}"]
    header += ["pairs", f"<= {TARGET_RATIO}"]
    rows = []
    for r in results:
        for clock in ("wall", "cpu"):
            c = r[clock]
            rows.append(
                [
                    r["model"],
                    f"{r['setup']['batch']} x {r['setup']['seq']}",
                    clock,
                    f"{r['cpu_share']:.2f}",
                    f"{r['load_before'][0]:.1f} -> {r['load_after'][0]:.1f}",
                    f"{c['plain_ms']:.0f}",
                    f"{c['epi_ms']:.0f}",
                    "n/a" if c["refresh_ms"] is None else f"{c['refresh_ms']:.0f}",
                    f"{c['ratio_no_refresh_median']:.3f}",
                    f"{c['ratio_median']:.3f}",
                    Interval(*c["ratio_mean_ci"]).format(3),
                    c["n_pairs"],
                    c["verdict"],
                ]
            )
    return "\n".join(
        [
            "# EPI training step vs plain fine-tuning",
            "",
            f"{meta['when']} · torch {meta['torch']} · transformers {meta['transformers']} · "
            f"{meta['threads']} threads · {meta['cpu']} · p = {meta['iso_ratio']} · refresh "
            f"every {meta['refresh_every']} steps, amortised at K = {k} · {meta['warmup']} "
            f"warm-up pair(s) excluded · command: `{meta['command']}`",
            "",
            "One step = forward + backward + clipping + optimizer + scheduler + zero_grad, as "
            "`transformers.Trainer` runs it for the finetune step (`build_trainer`), plain "
            "(Trainer's AdamW) and EPI (`IsolatingOptimizer`) on the same weights and batches, "
            "steps interleaved ABBA. Ratios are per-step EPI/plain with the refresh amortised "
            "over K; the verdict reads the 95 % t interval of their mean against the target "
            "(`supported`: the whole interval is below it). The load column is the machine's "
            "1-minute load average before and after the model's run (other jobs included).",
            "",
            table(header, rows),
            "",
        ]
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", default=",".join(MODELS))
    parser.add_argument("--pairs", type=int, help="timed step pairs per model (default: SETUPS)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed first step pairs")
    parser.add_argument("--k", type=int, default=50, help="mask interval to amortise over")
    parser.add_argument("--iso-ratio", type=float, default=0.05, help="p (finetune's default)")
    parser.add_argument("--refresh-every", type=int, default=8, help="refresh samples' spacing")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--cache-dir", default=str(REPO_ROOT / ".cache" / "smollm2"))
    parser.add_argument("--out", default=str(RESULTS / "epi_train_step"))
    parser.add_argument("--from-json", help="re-render the table of a saved run, no measuring")
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    if unknown := set(models) - set(MODELS):
        parser.error(f"unknown models {sorted(unknown)}; choose from {MODELS}")
    out = Path(args.out)
    if args.from_json:
        saved = json.loads(Path(args.from_json).read_text())
        results, meta = saved["results"], saved["meta"]
        for r in results:
            r["wall"], r["cpu"] = (summarise(r["rows"], c, meta["k"]) for c in ("wall", "cpu"))
    else:
        torch.set_num_threads(args.threads)
        results = []
        for name in models:
            setup = SETUPS[name]
            if args.pairs is not None:
                setup = Setup(setup.batch, setup.seq, args.pairs)
            print(f"measuring {name} ({setup}) ...", file=sys.stderr, flush=True)
            load_before = os.getloadavg()
            with tempfile.TemporaryDirectory() as tmp:
                rows = paired_rows(run_pair(name, setup, args, Path(tmp)))
            results.append(
                {
                    "model": name,
                    "setup": asdict(setup),
                    "load_before": load_before,
                    "load_after": os.getloadavg(),
                    "cpu_share": cpu_share(rows),
                    "wall": summarise(rows, "wall", args.k),
                    "cpu": summarise(rows, "cpu", args.k),
                    "rows": rows,
                }
            )
        import transformers

        meta = {
            "when": time.strftime("%Y-%m-%d %H:%M"),
            "torch": torch.__version__,
            "transformers": transformers.__version__,
            "threads": args.threads,
            "cpu": f"{platform.machine()} x{os.cpu_count()}",
            "iso_ratio": args.iso_ratio,
            "refresh_every": args.refresh_every,
            "warmup": args.warmup,
            "k": args.k,
            "command": "python -m bench.epi_train_step " + " ".join(argv or sys.argv[1:]),
        }
    for r in results:
        r["cpu_share"] = cpu_share(r["rows"])
    page = markdown(results, meta)
    print(page)
    write_results(out, page, {"meta": meta, "results": results})
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
