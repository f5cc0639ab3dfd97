"""atm_evaluate: exact match of each generator on clean and attacked test lists, the attacks built
once and shared by every model.

    python -m components.atm evaluate --data data/atm --retrieved data/atm_retrieved \
        --attacker models/atm/adversarial/attacker \
        --models sft=models/atm/generator_sft atm=models/atm/adversarial/generator \
        --reports reports/atm/evaluate

Conditions (each a list per test question; `n` fabrications):
- `clean`: the retrieved top-k;
- `noise_n`: n irrelevant documents (other people's) at random positions;
- `heldout_n_top` / `heldout_n_random`: n documents from the held-out fabricator (templates the
  attacker never trained on, each with its own wrong value), on top or at random positions;
- `corroborated_n_top`: n held-out fabrications sharing one wrong value (the hardest);
- `attacker_top`: the trained attacker's own fabrications on top (when `--attacker` is given).
The template fabricators need the world (world.json); a user's data gets clean, noise,
`counterfactual_n_top` (copies of the retrieved documents that state the answer, the answer
replaced by another question's: attacks.counterfactuals) and attacker. Per model and condition:
EM, and on attacked lists the adoption rate (the answer is a fabricated value); for the world,
EM over popular and over tail people apart (`em_popular`, `em_tail`). The last model
named is registered as `atm-generator` (challenger; champion when its EM under the held-out
attack, `counterfactual_2_top` for a user's data, beats the champion's)."""

from __future__ import annotations

import logging
import random
from pathlib import Path
from typing import Any

from components.atm import attacks, world
from components.atm.metrics import exact_match
from components.atm.params import AtmParams, AtmStep
from components.atm.prompts import rag_prompt
from components.common.cli import named_paths, path_arguments, step_main, step_parser
from components.common.io import read_json, read_jsonl, write_jsonl
from components.common.params import Profile
from components.common.repro import seed_everything
from components.common.tracking import step_run

log = logging.getLogger(__name__)
REGISTERED_NAME = "atm-generator"
COUNTS = (1, 2, 3)
HEADLINE = "heldout_2_top"  # the registry's condition (spec acceptance 2: n_fab 1-2)
USER_HEADLINE = "counterfactual_2_top"  # the same, for a user's data


def conditions(
    tests: list[dict], corpus: list[dict], state: dict[str, Any], seed: int
) -> dict[str, list[tuple[list[dict], list[dict]]]]:
    """Per condition, per test question: (its list, the fabrications in it)."""
    rng = random.Random(seed)
    people = {p["name"]: world.Person(**p) for p in state.get("people", [])}
    out: dict[str, list[tuple[list[dict], list[dict]]]] = {
        "clean": [(q["ctxs"], []) for q in tests]
    }
    for n in COUNTS:
        lists = []
        for q in tests:
            others = [d for d in corpus if d["id"] not in {c["id"] for c in q["ctxs"]}]
            noise = [{**d, "is_fab": False} for d in rng.sample(others, min(n, len(others)))]
            lists.append((attacks.insert(q["ctxs"], noise, "random", rng), []))
        out[f"noise_{n}"] = lists
    if not people:  # a user's data: the counterfactual fabricator, on top
        pool = [a for q in tests for a in q["answers"]]
        for n in COUNTS:
            made = [
                attacks.counterfactuals(q["ctxs"], q["answers"], pool, n, rng, f"cf-{q['id']}")
                for q in tests
            ]
            out[f"counterfactual_{n}_top"] = [
                (attacks.insert(q["ctxs"], fs, "top", rng), fs)
                for q, fs in zip(tests, made, strict=True)
            ]
        return out
    for n in COUNTS:
        for corroborated in (False, True):
            made = [
                attacks.template_fabrications(
                    question(q), people, state["values"], n, corroborated, rng
                )
                for q in tests
            ]
            positions = ("top",) if corroborated else ("top", "random")
            for position in positions:
                name = f"{'corroborated' if corroborated else 'heldout'}_{n}_{position}"
                out[name] = [
                    (attacks.insert(q["ctxs"], fs, position, rng), fs)
                    for q, fs in zip(tests, made, strict=True)
                ]
    return out


def question(record: dict[str, Any]) -> world.Question:
    meta = record["meta"]
    return world.Question(
        record["id"],
        meta["person"],
        meta["relation"],
        record["question"],
        record["answers"][0],
        tuple(record["gold"]),
    )


def score_model(
    model_dir: Path, tests: list[dict], lists: dict[str, list], params: AtmParams
) -> tuple[dict[str, float], list[dict]]:
    from components.common.models import load_causal_lm
    from components.common.sft import greedy_answers

    model, tokenizer = load_causal_lm(model_dir)
    metrics: dict[str, float] = {}
    predictions = []
    for name, pairs in lists.items():
        prompts = [
            rag_prompt(q["question"], ctxs) for q, (ctxs, _) in zip(tests, pairs, strict=True)
        ]
        answers = greedy_answers(
            model, tokenizer, prompts, params.max_answer_tokens, params.generation_batch_size
        )
        hits = [exact_match(a, q["answers"]) for a, q in zip(answers, tests, strict=True)]
        metrics[f"{name}.em"] = sum(hits) / len(hits)
        if name != "clean" and any(fs for _, fs in pairs):
            adopted = [attacks.adopted(a, fs) for a, (_, fs) in zip(answers, pairs, strict=True)]
            metrics[f"{name}.adoption"] = sum(adopted) / len(adopted)
        predictions += [
            {"condition": name, "id": q["id"], "answer": a, "em": h}
            for q, a, h in zip(tests, answers, hits, strict=True)
        ]
    return metrics, predictions


def em_by_popularity(predictions: list[dict], popular: dict[str, bool]) -> dict[str, float]:
    """`<model>.<condition>.em_popular` and `.em_tail`: EM over the questions about popular people
    (whose bios the base read repeatedly: parametric memory) and over the rest (PopQA-like)."""
    totals: dict[str, list[int]] = {}
    for row in predictions:
        group = "em_popular" if popular[row["id"]] else "em_tail"
        totals.setdefault(f"{row['model']}.{row['condition']}.{group}", []).append(int(row["em"]))
    return {key: sum(hits) / len(hits) for key, hits in totals.items()}


def run(
    params: AtmParams,
    profile: Profile,
    data_dir: Path,
    retrieved_dir: Path,
    attacker_dir: Path | None,
    models: dict[str, Path],
    report_dir: Path,
) -> dict[str, float]:
    import mlflow

    from components.atm.rounds_step import fabricate
    from components.common.models import load_causal_lm
    from components.common.plots import grouped_bar_plot
    from components.common.serving import log_answering_model
    from components.common.tracking import register_and_promote

    seed_everything(params.seed)
    tests = read_jsonl(retrieved_dir / "test.jsonl")
    corpus = read_jsonl(data_dir / "corpus.jsonl")
    with step_run("atm_evaluate", profile, params):
        state = read_json(data_dir / "world.json")
        lists = conditions(tests, corpus, state, params.seed)
        if attacker_dir is not None:
            made = fabricate(attacker_dir, tests, params)
            lists["attacker_top"] = [
                (attacks.insert(q["ctxs"], fs, "top", random.Random(0)), fs)
                for q, fs in zip(tests, made, strict=True)
            ]
        metrics: dict[str, float] = {}
        predictions = []
        for name, model_dir in models.items():
            scores, answers = score_model(model_dir, tests, lists, params)
            metrics |= {f"{name}.{k}": v for k, v in scores.items()}
            predictions += [{"model": name, **a} for a in answers]
        write_jsonl(report_dir / "predictions.jsonl", predictions)
        popular = {p["name"] for p in state.get("people", []) if p["popular"]}
        if popular:
            metrics |= em_by_popularity(
                predictions, {q["id"]: q["meta"]["person"] in popular for q in tests}
            )
        shown = [c for c in lists if not c.startswith("noise_") or c == "noise_2"]
        png = grouped_bar_plot(
            {c: {name: (metrics[f"{name}.{c}.em"], 0.0) for name in models} for c in shown},
            report_dir / "em_by_condition.png",
            title="Test exact match, clean and attacked lists",
            ylabel="exact match",
        )
        mlflow.log_metrics(metrics)
        mlflow.log_artifact(str(png), artifact_path="plots")
        final = list(models)[-1]
        headline = next(
            (h for h in (HEADLINE, USER_HEADLINE) if f"{final}.{h}.em" in metrics), "attacker_top"
        )
        value = metrics.get(f"{final}.{headline}.em", metrics[f"{final}.clean.em"])
        model, tokenizer = load_causal_lm(models[final])
        info = log_answering_model(model, tokenizer, params.max_answer_tokens)
        metrics |= register_and_promote(
            info.model_uri, REGISTERED_NAME, "em_attacked", value, tags={"profile": profile}
        )
        log.info("atm_evaluate: %s", metrics)
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.atm evaluate", __doc__, AtmStep)
    path_arguments(
        parser,
        "inputs",
        data=("data/atm", "atm_data's output (corpus, world)"),
        retrieved=("data/atm_retrieved", "atm_retrieve's output (test.jsonl)"),
    )
    parser.add_argument("--attacker", type=Path, help="the trained attacker (attacker_top)")
    parser.add_argument(
        "--models",
        nargs="+",
        default=["sft=models/atm/generator_sft", "atm=models/atm/adversarial/generator"],
        help="name=path of each generator to score; the last is registered",
    )
    path_arguments(parser, "outputs", reports=("reports/atm/evaluate", "predictions, plot"))
    args = parser.parse_args(argv)
    models = named_paths(args.models)
    return step_main(
        "atm_evaluate",
        args,
        AtmStep,
        lambda p: run(
            p.atm, p.profile, args.data, args.retrieved, args.attacker, models, args.reports
        ),
    )
