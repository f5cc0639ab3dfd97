"""The ILP planted-cause benchmark: a separate synthetic world whose pretraining corpus and SFT set
are built so that known subsets of the SFT records carry each cause of incomplete learning.

- C1 missing knowledge: QA about people the corpus never mentions.
- C2 conflict with pre-training: the corpus states a fact 50x, the SFT label says otherwise.
- C3 internal inconsistency: identical or paraphrased questions with different answers.
- C4 left-side forgetting: memorisation items trained in stage 0 of a sequential SFT, then never
  again while stage 1 trains everything else.
- C5 rare/complex pattern: ~2% of items ask a 2-hop question (through the "friend" relation).
- control: ordinary QA about facts the corpus states 10x, trained in the last stage.

The corpus also states every known fact as a Q&A line ("question: what is the color of X? red."),
as web text does, so the base answers the SFT questions zero-shot; with `use_raw_prompts` on the
tokenizer a question is rendered exactly like that line. The ground truth lives in
`meta.planted_cause`; diagnosis code never reads it."""

from __future__ import annotations

import os
import random
from dataclasses import dataclass
from typing import Any

from components.data_prep import world

CAUSES = ("C1", "C2", "C3", "C4", "C5")
QA_ATTRIBUTES = ("color",)  # one attribute: fewer facts, so the tiny base can learn them fast
QUESTION = "question: what is the {attribute} of {name}?"
PARAPHRASE = "question: which {attribute} does {name} have?"
TWO_HOP = "question: what is the {attribute} of the friend of {name}?"


# The planted world's chat template: the prompt as it is, no newline. The tiny base never sees a
# newline in pretraining (the corpus is one sentence per line, joined by EOS), and a 2-layer model
# cannot bridge that unseen token: measured on seed 0, the base's probability of the right colour
# is 0.74 on "question: ...? green" and 0.12 on "question: ...?\ngreen".
RAW_CHAT_TEMPLATE = "{{ messages[-1]['content'] }}"


def use_raw_prompts(tokenizer_dir: str | os.PathLike) -> None:
    """Give a saved tokenizer the raw chat template (render_prompt then returns the prompt)."""
    # imported here: transformers' Auto classes load torch, which data_prep never uses otherwise
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(tokenizer_dir))
    tokenizer.chat_template = RAW_CHAT_TEMPLATE
    tokenizer.save_pretrained(str(tokenizer_dir))


@dataclass(frozen=True)
class PlantedConfig:
    """Sizes of the planted world (tiny profile: a few hundred SFT records)."""

    n_control: int = 120
    n_missing: int = 36  # C1
    n_conflict: int = 24  # C2
    n_contradiction_pairs: int = 16  # C3 (two records per pair, half of them paraphrased)
    n_forgetting: int = 32  # C4
    n_rare: int = 6  # C5, about 2% of the SFT set
    known_repeats: int = 10
    conflict_repeats: int = 50
    n_eval: int = 24


def _people(n: int, rng: random.Random) -> list[world.Entity]:
    entities = world.make_world(n, rng)
    rng.shuffle(entities)
    return entities


# The world's fact templates plus a question-and-answer line, as web text has: it gives the base
# model the QA format (its SFT prompt up to the newline) without seeing any SFT record.
CORPUS_TEMPLATES = (*world.FACT_TEMPLATES, QUESTION + " {value}.")


def _sentences(name: str, attribute: str, value: str, repeats: int) -> list[str]:
    templates = CORPUS_TEMPLATES
    return [
        templates[i % len(templates)].format(attribute=attribute, name=name, value=value)
        for i in range(repeats)
    ]


def _record(prompt: str, response: str, cause: str, stage: int, task: str, **meta: Any) -> dict:
    # answers carry the leading space they have in the corpus ("... Kalo? green."): with the raw
    # prompt rendering below, a question and its answer tokenize exactly like a corpus line
    return {
        "task": task,
        "stage": stage,
        "prompt": prompt,
        "response": " " + response,
        "meta": {"planted_cause": cause, **meta},
    }


def build_world(seed: int, config: PlantedConfig = PlantedConfig()) -> dict[str, Any]:
    """The planted world: train/eval records and the corpus lines."""
    rng = random.Random(seed)
    n_c3_people = config.n_contradiction_pairs
    sizes = {
        "control": config.n_control,
        "hidden": config.n_missing,
        "conflict": config.n_conflict,
        "c3": n_c3_people,
        "rare": config.n_rare,
        "heldout": config.n_eval,
    }
    people = _people(sum(sizes.values()), rng)
    groups: dict[str, list[world.Entity]] = {}
    start = 0
    for group, size in sizes.items():
        groups[group] = people[start : start + size]
        start += size
    known = [p for g in ("control", "conflict", "c3", "rare", "heldout") for p in groups[g]]
    # the rare-template people have a known friend (C5 asks 2-hop questions through it)
    friend = {p.name: rng.choice([q for q in known if q is not p]).name for p in groups["rare"]}
    by_name = {p.name: p for p in known}

    # Corpus: every fact of every known person 10x; conflict people's colour 50x with value v.
    conflict_value = {p.name: p.attributes["color"] for p in groups["conflict"]}
    corpus: list[str] = []
    for person in known:
        for attribute in QA_ATTRIBUTES:
            repeats = config.known_repeats
            if person.name in conflict_value and attribute == "color":
                repeats = config.conflict_repeats
            corpus += _sentences(person.name, attribute, person.attributes[attribute], repeats)
        if person.name in friend:
            corpus += _sentences(person.name, "friend", friend[person.name], config.known_repeats)
    rng.shuffle(corpus)

    train: list[dict] = []
    for person in groups["control"]:
        attribute = rng.choice(QA_ATTRIBUTES)
        prompt = QUESTION.format(attribute=attribute, name=person.name)
        train.append(_record(prompt, person.attributes[attribute], "control", 1, "fact_qa"))
    for person in groups["hidden"]:  # C1: nothing about them anywhere in the corpus
        attribute = rng.choice(QA_ATTRIBUTES)
        prompt = QUESTION.format(attribute=attribute, name=person.name)
        train.append(_record(prompt, person.attributes[attribute], "C1", 1, "fact_qa"))
    for person in groups["conflict"]:  # C2: the label v' contradicts the corpus's v (50x)
        wrong = rng.choice(
            [v for v in world.ATTRIBUTES["color"] if v != conflict_value[person.name]]
        )
        prompt = QUESTION.format(attribute="color", name=person.name)
        train.append(
            _record(prompt, wrong, "C2", 1, "fact_qa", pretrained=conflict_value[person.name])
        )
    for index, person in enumerate(groups["c3"]):  # C3: the same question, two answers
        attribute = rng.choice(QA_ATTRIBUTES)
        true = person.attributes[attribute]
        other = rng.choice([v for v in world.ATTRIBUTES[attribute] if v != true])
        template = PARAPHRASE if index % 2 else QUESTION
        for prompt, value in (
            (QUESTION.format(attribute=attribute, name=person.name), true),
            (template.format(attribute=attribute, name=person.name), other),
        ):
            train.append(_record(prompt, value, "C3", 1, "fact_qa", pair=index))
    for person in groups["rare"]:  # C5: a rare 2-hop template over known facts
        attribute = rng.choice(QA_ATTRIBUTES)
        answer = by_name[friend[person.name]].attributes[attribute]
        prompt = TWO_HOP.format(attribute=attribute, name=person.name)
        train.append(_record(prompt, answer, "C5", 1, "fact_qa"))
    # C4: arbitrary key -> colour pairs memorised in stage 0, never seen again in stage 1
    keys = sorted(world.recall_table(config.n_forgetting, rng))
    table = [(key, rng.choice(world.ATTRIBUTES["color"])) for key in keys]
    for key, value in table:
        example = world.recall_example(key, value)
        train.append(_record(example.prompt, example.response, "C4", 0, "recall"))

    evaluation = []
    for person in groups["heldout"]:  # known from the corpus only
        attribute = rng.choice(QA_ATTRIBUTES)
        prompt = QUESTION.format(attribute=attribute, name=person.name)
        evaluation.append(_record(prompt, person.attributes[attribute], "control", 1, "fact_qa"))
    for key, value in table[: config.n_eval // 2]:
        example = world.recall_example(key, value)
        evaluation.append(_record(example.prompt, example.response, "C4", 0, "recall"))

    return {
        "train": _numbered(train, "train", rng),
        "eval": _numbered(evaluation, "eval", rng),
        "corpus": corpus,
    }


def _numbered(records: list[dict], split: str, rng: random.Random) -> list[dict]:
    rng.shuffle(records)
    return [
        {"id": f"planted-{split}-{i:05d}", **r, "line": i} for i, r in enumerate(records, start=1)
    ]


def planted_splits(params: Any) -> tuple[list[dict], list[dict], list[str]]:
    """data_prep's synthetic branch for `synthetic: ilp_planted` (shaped like synthetic_splits)."""
    built = build_world(params.seed)
    return built["train"], built["eval"], built["corpus"]
