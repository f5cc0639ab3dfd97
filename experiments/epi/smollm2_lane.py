"""The EPI SmolLM2 lane (issue 17): does EPI make SmolLM2-135M-Instruct forget less of what it
already knew while it is fine-tuned on new tasks? EPI vs full SFT vs a random mask at EPI's
sparsity, LoRA (r = 8 on q_proj, v_proj), seeds 0 1 2, in the order the project requires:

    python -m experiments.epi.smollm2_lane prereg     # write preregistration.json (commit it first)
    python -m experiments.epi.smollm2_lane baseline   # full SFT only: is there forgetting? (commit)
    python -m experiments.epi.smollm2_lane compare    # epi and random_mask on the same seeds
    python -m experiments.epi.smollm2_lane report     # the page section and the figure

`--full-ft` runs the same lane with full fine-tuning of SmolLM2 instead of LoRA (not run by
default: about 10 s a step on 2 CPU cores); `--smoke` runs 2 steps, 1 seed and 6 countries into a
temporary folder (the test).

What the base knows: `experiments.world_facts.base_knowledge`, the cloze probability of each
country's true capital among every capital of the table; a country is known when p >= 0.5.
Forgetting of a run = mean p over the base's known countries before SFT − the same mean after
(the fine-tuned model, LoRA merged, as the finetune step saves it), in points. The SFT trains
only new tasks unrelated to capitals (the synthetic `reverse` and `add` of
components/data_prep/world.py, rendered through SmolLM2's chat template by the finetune step).

Every run writes its own JSON under the work folder (.cache/epi_smollm2/<lane>/runs/<method>/
<seed>.json), so an interrupted stage resumes where it stopped."""

from __future__ import annotations

import argparse
import logging
import os
import random
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from components.common.io import atomic_path, read_json, write_json, write_jsonl
from components.common.params import LoraParams
from components.data_prep import world
from experiments.epi.run import METHODS
from experiments.world_facts import CAPITALS, FICTIONAL

log = logging.getLogger(__name__)
REPO = Path(__file__).resolve().parents[2]
RESULTS = REPO / "docs/results/epi_smollm2"
WORK = REPO / ".cache/epi_smollm2"

LANE_METHODS = ["full", "epi", "random_mask"]  # as experiments/epi/run.py's METHODS name them
assert set(LANE_METHODS) <= set(METHODS)
SEEDS = [0, 1, 2]
KNOWN_P = 0.5
TASKS = ("reverse", "add")
DATA_SEED = 0
EVAL_PER_TASK = 25
# every record fits: the chat-rendered reverse/add records are 42-49 SmolLM2 tokens
MAX_LENGTH = 52
BATCH_SIZE = 8
# pre-registered TOST margins (fraction units): forgetting (mean p of the true capital) and the
# new tasks' average exact-match accuracy
FORGETTING_MARGIN = 0.02
ACCURACY_MARGIN = 0.10
LANES: dict[str, dict[str, Any]] = {
    "lora": {
        "steps": 60,
        "learning_rate": 5e-4,
        "lora": {"enabled": True, "r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]},
        "budget": "about 1.5 s per LoRA step at batch 8 x <= 52 tokens on an idle 2-core CPU: "
        "60 steps plus loading, the finetune step's own evaluation and the before/after probe, "
        "about 2.5 minutes per run, 9 runs (3 methods x 3 seeds) about 25 minutes",
    },
    "full_ft": {
        "steps": 60,
        "learning_rate": 5e-5,
        "lora": {"enabled": False},
        "budget": "about 10 s per full fine-tuning step on an idle 2-core CPU: about 11 minutes "
        "per run, 9 runs about 1.7 hours (an option, not run by default)",
    },
    # the second regime (its own preregistration): new knowledge in the probe's own domain
    "lora_fictional": {
        "steps": 60,
        "learning_rate": 5e-4,
        "lora": {"enabled": True, "r": 8, "alpha": 16, "target_modules": ["q_proj", "v_proj"]},
        "budget": "as the LoRA lane: about 2.5 minutes per run on an idle 2-core CPU; 3 "
        "phenomenon runs and 9 comparison runs, about 30 minutes",
    },
}
# lora_fictional's SFT: the capitals of the invented countries, asked as chat questions
FICTIONAL_TASK = "fictional_capital"
FICTIONAL_PHENOMENON_SEEDS = [100, 101, 102]


def suffix(lane: str) -> str:
    return "" if lane == "lora" else f"_{lane}"


def finetune_params(lane: str, method: str, seed: int, steps: int) -> Any:
    from components.epi_finetune.params import FinetuneParams

    spec = LANES[lane]
    return FinetuneParams(
        method=method,
        seed=seed,
        schedule="mixed",
        track_drift=False,
        lora=LoraParams(**spec["lora"]),
        max_steps=steps,
        batch_size=BATCH_SIZE,
        learning_rate=spec["learning_rate"],
        max_length=MAX_LENGTH,
        eval_every=steps,  # the new tasks' accuracy once, at the end
        eval_per_task=EVAL_PER_TASK,
        dynamics_every=10**6,  # per-record losses only at step 0 (the step always records it)
        save_steps=10**6,
        logging_steps=max(1, steps // 6),
        resume=False,
    )


def new_task_records(n_train: int, n_eval: int, seed: int = DATA_SEED) -> tuple[list, list]:
    """`n_train` training and `n_eval` eval records per task of TASKS, prompts all distinct."""
    rng, seen = random.Random(seed), set()
    make = {"reverse": world.reverse_example, "add": world.add_example}
    splits: tuple[list, list] = ([], [])
    for task in TASKS:
        examples = world.unique_examples(make[task], n_train + n_eval, rng, seen)
        for split, part in enumerate((examples[:n_train], examples[n_train:])):
            name = ("train", "eval")[split]
            splits[split].extend(
                {
                    "id": f"{task}-{name}-{i:05d}",
                    "task": task,
                    "stage": 0,
                    "prompt": ex.prompt,
                    "response": ex.response,
                    "meta": ex.meta,
                }
                for i, ex in enumerate(part)
            )
    for records in splits:
        rng.shuffle(records)
    return splits


def fictional_records() -> list[dict[str, Any]]:
    """One record per invented country of experiments.world_facts.FICTIONAL: its capital."""
    return [
        {
            "id": f"{FICTIONAL_TASK}-{i:05d}",
            "task": FICTIONAL_TASK,
            "stage": 0,
            "prompt": f"What is the capital of {country}?",
            "response": capital,
            "meta": {"country": country},
        }
        for i, (country, capital) in enumerate(sorted(FICTIONAL.items()))
    ]


def write_data(data: Path, n_train: int, n_eval: int, fictional: bool = False) -> Path:
    """The finetune step's data folder (no pretraining corpus: the base is SmolLM2 as shipped).
    `fictional`: every invented country's capital, trained and evaluated (memorisation)."""
    if (data / "train.jsonl").is_file():
        return data
    if fictional:
        train = evaluation = fictional_records()
    else:
        train, evaluation = new_task_records(n_train, n_eval)
    with atomic_path(data) as tmp:
        tmp.mkdir()
        write_jsonl(tmp / "train.jsonl", train)
        write_jsonl(tmp / "eval.jsonl", evaluation)
        (tmp / "corpus.txt").write_text("", encoding="utf-8")
    return data


def known_of(base: dict[str, float]) -> list[str]:
    return sorted(c for c, p in base.items() if p >= KNOWN_P)


def forgetting(before: dict[str, float], after: dict[str, float]) -> dict[str, float]:
    """The lane's metric on the base's known countries: mean p before − mean p after (the
    pre-registered one), and the fraction still known (p >= 0.5) after (reported alongside)."""
    known = known_of(before)
    if not known:
        raise ValueError("the base knows none of the probed capitals")
    mean_before = sum(before[c] for c in known) / len(known)
    mean_after = sum(after[c] for c in known) / len(known)
    return {
        "forgetting": mean_before - mean_after,
        "mean_before": mean_before,
        "mean_after": mean_after,
        "still_known": sum(after[c] >= KNOWN_P for c in known) / len(known),
    }


class Lane:
    """One lane's folders and settings; `run` is resumable per (method, seed)."""

    def __init__(self, lane: str, work: Path, out: Path, steps: int, countries: list[str]):
        self.lane, self.work, self.out, self.steps = lane, work, out, steps
        self.countries = countries
        self.root = work / lane

    def prepare(self) -> tuple[Path, Path, dict[str, float]]:
        from components.common.models import materialize_smollm2
        from experiments.world_facts import base_knowledge

        base_dir = materialize_smollm2(REPO / ".cache/smollm2")
        n_train = max(self.steps * BATCH_SIZE // len(TASKS), 8)
        fictional = self.lane == "lora_fictional"
        data = write_data(self.root / "data", n_train, EVAL_PER_TASK, fictional)
        probe = self.work / "base_knowledge.json"
        cached = read_json(probe) if probe.is_file() else {}
        if cached.get("countries") != self.countries:
            cached = {"countries": self.countries, "p": base_knowledge(base_dir, self.countries)}
            write_json(probe, cached)
        return base_dir, data, cached["p"]

    def run(self, method: str, seed: int) -> dict[str, Any]:
        from components.epi_finetune import step as finetune
        from experiments.world_facts import base_knowledge

        path = self.root / "runs" / method / f"{seed}.json"
        if path.is_file():
            saved = read_json(path)
            if saved["steps"] == self.steps:
                return saved
        base_dir, data, before = self.prepare()
        params = finetune_params(self.lane, method, seed, self.steps)
        out = self.root / "runs" / method / str(seed)
        shutil.rmtree(out, ignore_errors=True)
        print(f"[epi-smollm2 {self.lane}] {method} seed {seed}", flush=True)
        start = time.time()
        metrics = finetune.run(
            params, "smollm2", data, base_dir, out / "m", out / "r", checkpoint_root=out / "ckpt"
        )
        trained = time.time() - start
        after = base_knowledge(out / "m", known_of(before))
        result = {
            "lane": self.lane,
            "method": method,
            "seed": seed,
            "steps": self.steps,
            **forgetting(before, after),
            "after": after,
            **{k: v for k, v in metrics.items() if k.startswith("acc") or k == "train_loss"},
            "finetune_seconds": trained,
            "seconds": time.time() - start,
        }
        shutil.rmtree(out, ignore_errors=True)  # the merged model is ~0.5 GB
        write_json(path, result)
        return result

    def runs(self, methods: list[str], seeds: list[int]) -> dict[str, list[dict[str, Any]]]:
        return {m: [self.run(m, s) for s in seeds] for m in methods}

    def header(self, seeds: list[int]) -> dict[str, Any]:
        _, _, before = self.prepare()
        known = known_of(before)
        return {
            "lane": self.lane,
            "seeds": seeds,
            "steps": self.steps,
            "probed": len(before),
            "known": known,
            "mean_before": sum(before[c] for c in known) / max(len(known), 1),
            "base_knowledge": before,
        }


def preregistration(smoke: bool = False) -> dict[str, Any]:
    """What is fixed before any run of this lane (written by `prereg`, committed first)."""
    return {
        "written": "before any run of this lane (committed with the code, before the baseline)",
        "model": "SmolLM2-135M-Instruct as shipped (the smollm2 profile)",
        "knowledge": f"experiments.world_facts.base_knowledge over {len(CAPITALS)} countries: "
        "cloze 'The capital of <country> is' scored over every capital of the table; a country "
        f"is known when p >= {KNOWN_P}",
        "metric": "forgetting = mean p(true capital) over the base's known countries before SFT "
        "- the same mean after SFT (LoRA merged), per seed, in probability points; reported "
        "alongside (not a decision metric): the fraction of known countries still known after "
        "and the new tasks' exact-match accuracy",
        "new_tasks": f"{', '.join(TASKS)} (components/data_prep/world.py), data seed {DATA_SEED}, "
        f"{EVAL_PER_TASK} eval records per task, chat template, max_length {MAX_LENGTH}",
        "methods": LANE_METHODS,
        "method_settings": "FinetuneParams defaults for EPI (p = 0.05, K = 25, beta = 0.95, "
        "final-delta protection); random_mask isolates a random 5 % (same sparsity); full has "
        "no isolation; on LoRA the eligible tensors are the lora_A/lora_B weights",
        "seeds": SEEDS,
        "lanes": {
            name: {
                "steps": spec["steps"],
                "batch_size": BATCH_SIZE,
                "learning_rate": spec["learning_rate"],
                "lora": spec["lora"],
                "budget": spec["budget"],
                "run_by_default": name == "lora",
            }
            for name, spec in LANES.items()
        },
        "order": "1. baseline: full SFT on every seed, its forgetting CI written to baseline.json "
        "and committed; 2. compare: epi and random_mask on the same seeds (full reused); "
        "3. report",
        "rules": {
            "phenomenon": "forgetting shown when the 95 % t interval of full SFT's mean "
            "forgetting (n = 3 seeds, sample std) lies wholly above 0; if it does not, compare "
            "is not run (the lane is reported with the baseline alone)",
            "epi_better": "EPI forgets less than full SFT when the 95 % paired t interval of "
            "forgetting(full) - forgetting(epi) lies wholly above 0; wholly below: contradicted; "
            "else not shown",
            "importance": "importance matters when the same interval of forgetting(random_mask) "
            "- forgetting(epi) lies wholly above 0",
            "no_difference": "EPI forgets as much as full SFT only by TOST: the 90 % paired t "
            f"interval inside +-{FORGETTING_MARGIN} (probability points); a CI that merely "
            "contains 0 is 'not shown'",
            "new_tasks": "EPI learns the new tasks as well as full SFT by TOST on their average "
            f"accuracy, margin +-{ACCURACY_MARGIN}",
        },
        "margins": {"forgetting": FORGETTING_MARGIN, "new_tasks_accuracy": ACCURACY_MARGIN},
        "smoke": smoke,
    }


def fictional_preregistration() -> dict[str, Any]:
    """The second regime, fixed before any of its runs: the LoRA lane's knowledge, metric,
    methods, settings and rules, with new knowledge in the probe's own domain as the SFT."""
    first = preregistration()
    spec = LANES["lora_fictional"]
    return {
        **{k: first[k] for k in ("model", "knowledge", "metric", "methods", "method_settings")},
        "written": "after the first regime (reverse and add) showed no forgetting on LoRA or "
        "full fine-tuning, before any run of this regime (committed with the code)",
        "why": "the first regime's SFT shares nothing with the probed facts; this one teaches "
        "new facts of the probed kind (capitals), the case where fine-tuning is known to "
        "overwrite what the model knew",
        "new_tasks": f"{FICTIONAL_TASK}: 'What is the capital of <country>?' for the "
        f"{len(FICTIONAL)} invented countries of experiments.world_facts.FICTIONAL, trained and "
        "evaluated (exact match) on all of them, chat template",
        "lane": {
            "steps": spec["steps"],
            "batch_size": BATCH_SIZE,
            "learning_rate": spec["learning_rate"],
            "lora": spec["lora"],
            "budget": spec["budget"],
        },
        "seeds": {"phenomenon": FICTIONAL_PHENOMENON_SEEDS, "compare": SEEDS},
        "order": "1. baseline: full SFT on the phenomenon seeds 100-102 (their own seeds), "
        "committed; 2. compare, only if forgetting is shown: full, epi and random_mask on fresh "
        "seeds 0-2; 3. report",
        "rules": first["rules"],
        "margins": first["margins"],
    }


def write_preregistration(out: Path, smoke: bool) -> Path:
    path = out / "preregistration.json"
    if path.is_file() and not smoke:
        raise SystemExit(f"{path} exists: the preregistration is written once, before any run")
    write_json(path, preregistration(smoke))
    return path


def baseline(lane: Lane, seeds: list[int]) -> Path:
    from experiments.epi.smollm2_report import phenomenon

    prereg = (
        "preregistration_fictional.json"
        if lane.lane == "lora_fictional"
        else ("preregistration.json")
    )
    if not (lane.out / prereg).is_file():
        raise SystemExit(f"no {prereg}: run `prereg` and commit it first")
    runs = lane.runs(["full"], seeds)["full"]
    saved = {**lane.header(seeds), "runs": runs}
    saved["phenomenon"] = phenomenon(runs)
    path = lane.out / f"baseline{suffix(lane.lane)}.json"
    write_json(path, saved)
    return path


def compare(lane: Lane, seeds: list[int], force: bool) -> Path:
    from experiments.epi.smollm2_report import phenomenon

    path = lane.out / f"baseline{suffix(lane.lane)}.json"
    if not path.is_file():
        raise SystemExit(f"no {path.name}: run `baseline` first (and commit its result)")
    shown = phenomenon(read_json(path)["runs"])["verdict"] == "forgetting shown"
    if not shown and not force:
        raise SystemExit("the baseline shows no forgetting: compare is not run (preregistered)")
    runs = lane.runs(LANE_METHODS, seeds)
    saved = {**lane.header(seeds), "forced": not shown, "results": runs}
    out = lane.out / f"compare{suffix(lane.lane)}.json"
    write_json(out, saved)
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m experiments.epi.smollm2_lane", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["prereg", "baseline", "compare", "report", "all"])
    parser.add_argument("--seeds", type=int, nargs="+", default=SEEDS)
    parser.add_argument("--full-ft", action="store_true", help="full fine-tuning, not LoRA")
    parser.add_argument(
        "--fictional",
        action="store_true",
        help="the second regime (LoRA): SFT on the invented countries' capitals",
    )
    parser.add_argument("--smoke", action="store_true", help="2 steps, 1 seed, 6 countries")
    parser.add_argument("--out", type=Path, help="results folder (default docs/results/...)")
    parser.add_argument("--work", type=Path, help="per-run JSONs (default .cache/epi_smollm2)")
    parser.add_argument("--force", action="store_true", help="compare without forgetting shown")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    lane_name = "lora_fictional" if args.fictional else "full_ft" if args.full_ft else "lora"
    seeds = args.seeds
    if args.fictional and args.command == "baseline" and args.seeds == SEEDS:
        seeds = FICTIONAL_PHENOMENON_SEEDS  # the regime is chosen on its own seeds
    steps, countries = LANES[lane_name]["steps"], list(CAPITALS)
    scratch = None
    if args.smoke:
        steps, seeds, countries = 2, args.seeds[:1], countries[:6]
        if args.out is None or args.work is None:
            scratch = Path(tempfile.mkdtemp(prefix="epi-smollm2-smoke-"))
    out = (args.out or (scratch / "results" / "epi_smollm2" if scratch else RESULTS)).resolve()
    work = (args.work or (scratch / "work" if scratch else WORK)).resolve()
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    os.environ.setdefault("MLFLOW_TRACKING_URI", f"sqlite:///{work / 'mlflow.db'}")
    os.environ.setdefault("MLFLOW_EXPERIMENT_NAME", "epi-smollm2")
    lane = Lane(lane_name, work, out, steps, countries)
    if args.command == "prereg" and args.fictional:
        path = out / "preregistration_fictional.json"
        if path.is_file():
            raise SystemExit(f"{path} exists: the preregistration is written once")
        write_json(path, fictional_preregistration())
        print(f"wrote {path}")
    elif args.command == "prereg" or (args.command == "all" and args.smoke):
        print(f"wrote {write_preregistration(out, args.smoke)}")
    if args.command in ("baseline", "all"):
        print(f"wrote {baseline(lane, seeds)}")
    if args.command in ("compare", "all"):
        print(f"wrote {compare(lane, seeds, args.force or args.smoke)}")
    if args.command in ("report", "all"):
        from experiments.epi.smollm2_report import write_report

        for written in write_report(out):
            print(f"wrote {written}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
