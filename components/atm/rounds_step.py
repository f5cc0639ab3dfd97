"""atm_rounds: the adversarial rounds, attacker turn then generator turn, `atm.rounds` times.

    python -m components.atm rounds --retrieved data/atm_retrieved \
        --generator models/atm/generator_sft --attacker models/atm/attacker_sft \
        --out models/atm --reports reports/atm/rounds

Round t, on the training questions (their retrieved lists):
1. attacker turn: A_t samples `attacker.fabrications` documents per question; each is scored by
   G_t's mean NLL of the gold answer with that document alone as context; DPO on (most
   misleading, least misleading) gives A_{t+1} (skipped with `attacker.update: false`);
2. generator turn: A_{t+1}'s fresh fabrications go into each list at random positions, the list
   is perturbed (mito.py's data default), and MITO trains G_{t+1} from G_t on (clean, attacked).
Each round measures, on `probe_questions` dev questions: the attack strength of A_t and A_{t+1}
against the same frozen G_t (the attacker should get stronger), and G_{t+1}'s exact match on the
clean lists and with A_{t+1}'s fabrications on top. Outputs: `out_dir`/generator and
`out_dir`/attacker (the last round's), `report_dir`/rounds.json and rounds.png."""

from __future__ import annotations

import logging
import random
import shutil
import tempfile
from pathlib import Path

from components.atm import attacker as attack
from components.atm import attacks
from components.atm.metrics import exact_match
from components.atm.params import AtmParams, AtmStep
from components.atm.prompts import rag_prompt
from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import atomic_path, read_jsonl, write_json
from components.common.params import Profile
from components.common.repro import seed_everything
from components.common.tracking import step_run

log = logging.getLogger(__name__)


def fabricate(model_dir: Path, questions: list[dict], params: AtmParams) -> list[list[dict]]:
    """Per question, the attacker's sampled documents, parsed, marked as fabrications."""
    from components.common.models import load_causal_lm, render_prompt
    from components.common.sft import sampled_continuations

    model, tokenizer = load_causal_lm(model_dir)
    texts = [
        render_prompt(tokenizer, attack.attacker_prompt(q["question"], q["answers"], q["ctxs"][0]))
        for q in questions
    ]
    a = params.attacker
    samples = sampled_continuations(
        model,
        tokenizer,
        texts,
        a.max_new_tokens,
        params.generation_batch_size,
        a.fabrications,
        a.temperature,
        a.top_p,
    )
    return [
        [
            {"id": f"fab-{q['id']}-{j}", **attack.parse_document(text), "is_fab": True}
            for j, text in enumerate(drawn)
        ]
        for q, drawn in zip(questions, samples, strict=True)
    ]


def strengths(model_dir: Path, questions: list[dict], fabs: list[list[dict]], max_length: int):
    """Per question, each fabrication's strength: the generator's gold-answer NLL given it alone."""
    from components.common.models import load_causal_lm
    from components.common.sft import per_record_loss

    model, tokenizer = load_causal_lm(model_dir)
    records = [
        record
        for q, fs in zip(questions, fabs, strict=True)
        for record in attack.scoring_records(q["question"], q["answers"][0], fs)
    ]
    flat = per_record_loss(model, tokenizer, records, max_length)
    sizes = [len(fs) for fs in fabs]
    starts = [sum(sizes[:i]) for i in range(len(sizes))]
    return [flat[s : s + n] for s, n in zip(starts, sizes, strict=True)]


def exact_matches(model_dir: Path, questions: list[dict], lists: list[list], params: AtmParams):
    from components.common.models import load_causal_lm
    from components.common.sft import greedy_answers

    model, tokenizer = load_causal_lm(model_dir)
    prompts = [rag_prompt(q["question"], ctxs) for q, ctxs in zip(questions, lists, strict=True)]
    answers = greedy_answers(
        model, tokenizer, prompts, params.max_answer_tokens, params.generation_batch_size
    )
    return [exact_match(a, q["answers"]) for a, q in zip(answers, questions, strict=True)]


def mito_rows(questions: list[dict], fabs: list[list[dict]], params: AtmParams, rng) -> list:
    rows = []
    for q, fs in zip(questions, fabs, strict=True):
        attacked = attacks.insert(q["ctxs"], fs, "random", rng)
        attacked = attacks.perturb(
            attacked, set(q["gold"]), params.mito.drop_ratio, params.mito.duplicate_ratio, rng
        )
        rows.append(
            {
                "clean_prompt": rag_prompt(q["question"], q["ctxs"]),
                "adv_prompt": rag_prompt(q["question"], attacked),
                "answer": q["answers"][0],
            }
        )
    return rows


def flat(rows: list[list[float]]) -> list[float]:
    return [x for row in rows for x in row]


def mean(values: list[float]) -> float:
    return sum(values) / len(values) if values else float("nan")


def turn_run(t: int, agent: str):
    """A nested MLflow run per turn: each Trainer logs its own arguments and curves there (two
    Trainers in one run would clash on their logged parameters)."""
    import mlflow

    return mlflow.start_run(run_name=f"round{t}-{agent}", nested=True)


def play_round(
    t: int,
    params: AtmParams,
    generator: Path,
    adversary: Path,
    work: Path,
    report_dir: Path,
    train: list[dict],
    probe: list[dict],
    rng: random.Random,
) -> tuple[Path, Path, dict[str, float]]:
    """One attacker turn and one generator turn; (G_{t+1}, A_{t+1}, the round's metrics)."""
    from components.atm.mito import train_mito
    from components.common.preference import train_preferences

    length = params.mito.max_length
    questions = rng.sample(train, min(params.questions_per_round or len(train), len(train)))
    fabs = fabricate(adversary, questions, params)
    scores = strengths(generator, questions, fabs, length)
    pairs = [
        pair
        for q, fs, s in zip(questions, fabs, scores, strict=True)
        if (
            pair := attack.preference_pair(
                f"{q['id']}-r{t}",
                attack.attacker_prompt(q["question"], q["answers"], q["ctxs"][0]),
                [attack.document_text(f["title"], f["text"]) for f in fs],
                s,
            )
        )
    ]
    before = mean(flat(strengths(generator, probe, fabricate(adversary, probe, params), length)))
    if params.attacker.update and pairs:
        trained = work / f"attacker{t}"
        dpo = params.attacker.dpo.model_copy(update={"seed": params.seed + t})
        with turn_run(t, "attacker"):
            train_preferences(dpo, adversary, pairs, trained, report_dir / f"round{t}/attacker")
        adversary = trained
    probe_fabs = fabricate(adversary, probe, params)
    after = mean(flat(strengths(generator, probe, probe_fabs, length)))
    fresh = fabricate(adversary, questions, params)
    rows = mito_rows(questions, fresh, params, rng)
    next_generator = work / f"generator{t}"
    turn_reports = report_dir / f"round{t}" / "generator"
    with turn_run(t, "generator"):
        mito = train_mito(
            params.mito, generator, rows, next_generator, turn_reports, params.seed + t
        )
    clean = exact_matches(next_generator, probe, [q["ctxs"] for q in probe], params)
    on_top = [
        attacks.insert(q["ctxs"], fs, "top", rng) for q, fs in zip(probe, probe_fabs, strict=True)
    ]
    attacked = exact_matches(next_generator, probe, on_top, params)
    metrics = {
        "pairs": float(len(pairs)),
        "strength_before": before,
        "strength_after": after,
        "em_clean": mean([float(x) for x in clean]),
        "em_attacked": mean([float(x) for x in attacked]),
        **{f"mito_{k}": v for k, v in mito.items()},
    }
    return next_generator, adversary, metrics


def run(
    params: AtmParams,
    profile: Profile,
    retrieved_dir: Path,
    generator_dir: Path,
    attacker_dir: Path,
    out_dir: Path,
    report_dir: Path,
) -> dict[str, float]:
    import mlflow

    from components.common.plots import line_plot

    seed_everything(params.seed)
    rng = random.Random(params.seed)
    train = read_jsonl(retrieved_dir / "train.jsonl")
    dev = read_jsonl(retrieved_dir / "dev.jsonl") or train
    probe = rng.sample(dev, min(params.probe_questions, len(dev)))
    history: list[dict[str, float]] = []
    with step_run("atm_rounds", profile, params), tempfile.TemporaryDirectory() as scratch:
        generator, adversary = generator_dir, attacker_dir
        for t in range(1, params.rounds + 1):
            generator, adversary, metrics = play_round(
                t, params, generator, adversary, Path(scratch), report_dir, train, probe, rng
            )
            history.append({"round": float(t), **metrics})
            mlflow.log_metrics(metrics, step=t)
            if params.log_round_models:
                mlflow.log_artifacts(str(generator), artifact_path=f"round{t}/generator")
                mlflow.log_artifacts(str(adversary), artifact_path=f"round{t}/attacker")
            log.info("atm round %d: %s", t, metrics)
        with atomic_path(out_dir) as tmp:
            shutil.copytree(generator, tmp / "generator")
            shutil.copytree(adversary, tmp / "attacker")
        write_json(report_dir / "rounds.json", history)
        rounds = [h["round"] for h in history]
        png = line_plot(
            {
                key: (rounds, [h[key] for h in history])
                for key in ("em_clean", "em_attacked", "strength_before", "strength_after")
            },
            report_dir / "rounds.png",
            title="ATM rounds: dev EM (clean, attacked) and attack strength (gold-answer NLL)",
            xlabel="round",
            ylabel="value",
        )
        mlflow.log_artifact(str(png), artifact_path="plots")
    return {f"final_{k}": v for k, v in history[-1].items() if k != "round"}


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.atm rounds", __doc__, AtmStep)
    path_arguments(
        parser,
        "inputs",
        retrieved=("data/atm_retrieved", "atm_retrieve's output"),
        generator=("models/atm/generator_sft", "G_0, the warm-up generator"),
        attacker=("models/atm/attacker_sft", "A_0, the warm-up attacker"),
    )
    path_arguments(
        parser,
        "outputs",
        out=("models/atm/adversarial", "generator/ and attacker/ of the last round"),
        reports=("reports/atm/rounds", "rounds.json, rounds.png, each turn's curves"),
    )
    args = parser.parse_args(argv)
    return step_main(
        "atm_rounds",
        args,
        AtmStep,
        lambda p: run(
            p.atm,
            p.profile,
            args.retrieved,
            args.generator,
            args.attacker,
            args.out,
            args.reports,
        ),
    )
