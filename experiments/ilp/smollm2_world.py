"""ILP's planted-cause world for the real SmolLM2-135M-Instruct: every cause built from what the
base demonstrably knows (probed first, `experiments.world_facts.base_knowledge`).

- control: "What is the capital of <country>?" for countries the base knows, true capital.
- C2 conflict: the countries the base is *most* confident about, labelled with another capital.
- C1 missing knowledge: invented countries with invented capitals.
- C3 contradiction: an invented country asked twice ("What is ..." / "Which capital does ... have?")
  with two different capitals.
- C4 left-side forgetting: "Recall the code word for <key>." items trained in stage 0 only.
- C5 under-trained by construction: a rare, compositional template ("Spell the capital of
  <country> backwards.") over known countries: six records of a skill the base lacks.

Two worlds with disjoint entities: `dev` (rules are calibrated on it) and `heldout` (scored).
The ground truth is `meta.planted_cause`; the diagnosis never reads it."""

from __future__ import annotations

import random
from dataclasses import dataclass
from typing import Any

from experiments.world_facts import CAPITALS, FICTIONAL, QUESTION

WORLDS = ("dev", "heldout")
PARAPHRASE = "Which capital does {} have?"
CODE_PROMPT = "Recall the code word for {}."
SPELL_PROMPT = "Spell the capital of {} backwards."
# how the continued-pretraining documents (interventions X1, X2 and their control) state a fact
CORPUS_TEMPLATES = (
    "The {attribute} of {name} is {value}.",
    "{name}'s {attribute} is {value}.",
    "{value} is the {attribute} of {name}.",
)
CODE_WORDS = (
    "amber", "falcon", "harbor", "velvet", "pepper", "marble", "lantern", "thistle", "copper",
    "willow", "saddle", "meadow", "cobalt", "ember", "garnet", "juniper", "quartz", "raven",
    "sparrow", "tundra", "walnut", "canyon", "feather", "glacier",
)  # fmt: skip
SYLLABLES = ("ka", "fu", "mi", "rel", "tos", "ven", "dri", "lo", "pam", "ush", "gor", "zei")


@dataclass(frozen=True)
class WorldSizes:
    c2: int = 10
    control: int = 12
    c5: int = 6
    c1: int = 10
    c3_pairs: int = 5
    c4: int = 10
    known_threshold: float = 0.5  # the base "knows" a capital at this cloze probability


def split_entities(knowledge: dict[str, float], sizes: WorldSizes) -> dict[str, dict[str, list]]:
    """Known and invented countries, each split in two disjoint halves: dev and heldout."""
    known = sorted(c for c, p in knowledge.items() if p >= sizes.known_threshold)
    need = sizes.c2 + sizes.control + sizes.c5
    if len(known) < 2 * need:
        raise ValueError(
            f"the base knows {len(known)} capitals; two worlds of this size need {2 * need}"
        )
    fictional = sorted(FICTIONAL)
    rng = random.Random("ilp-smollm2-worlds")
    rng.shuffle(known)
    rng.shuffle(fictional)
    half, fhalf = len(known) // 2, len(fictional) // 2
    return {
        "dev": {"known": sorted(known[:half]), "fictional": sorted(fictional[:fhalf])},
        "heldout": {"known": sorted(known[half:]), "fictional": sorted(fictional[fhalf:])},
    }


def _record(world: str, index: int, task: str, stage: int, prompt: str, answer: str, cause: str):
    return {
        "id": f"{world}-{index:03d}",
        "task": task,
        "stage": stage,
        "prompt": prompt,
        "response": answer,
        "meta": {"planted_cause": cause},
    }


def planted_records(
    world: str, entities: dict[str, list], knowledge: dict[str, float], sizes: WorldSizes
) -> list[dict[str, Any]]:
    """The world's SFT records, shuffled, stage 0 = the C4 items, stage 1 = everything else."""
    rng = random.Random(f"ilp-smollm2:{world}")
    by_confidence = sorted(entities["known"], key=lambda c: (-knowledge[c], c))
    conflict = by_confidence[: sizes.c2]
    rest = by_confidence[sizes.c2 :]
    rng.shuffle(rest)
    control, spelled = rest[: sizes.control], rest[sizes.control : sizes.control + sizes.c5]
    fictional = list(entities["fictional"])
    rng.shuffle(fictional)
    missing = fictional[: sizes.c1]
    contradicted = fictional[sizes.c1 : sizes.c1 + sizes.c3_pairs]
    if len(contradicted) < sizes.c3_pairs:
        raise ValueError(f"{world}: not enough invented countries for C1 and C3")

    rows: list[tuple[str, int, str, str, str]] = []  # task, stage, prompt, answer, cause
    rows += [("capital_qa", 1, QUESTION.format(c), CAPITALS[c], "control") for c in control]
    for country in conflict:
        wrong = rng.choice(sorted(v for k, v in CAPITALS.items() if k != country))
        rows.append(("capital_qa", 1, QUESTION.format(country), wrong, "C2"))
    rows += [("capital_qa", 1, QUESTION.format(c), FICTIONAL[c], "C1") for c in missing]
    for country in contradicted:
        other = rng.choice(sorted(FICTIONAL[c] for c in fictional if c != country))
        rows.append(("capital_qa", 1, QUESTION.format(country), FICTIONAL[country], "C3"))
        rows.append(("capital_qa", 1, PARAPHRASE.format(country), other, "C3"))
    keys: set[str] = set()
    while len(keys) < sizes.c4:
        keys.add("".join(rng.sample(SYLLABLES, 2)))
    words = rng.sample(CODE_WORDS, sizes.c4)
    rows += [
        ("code_recall", 0, CODE_PROMPT.format(k), w, "C4")
        for k, w in zip(sorted(keys), words, strict=True)
    ]
    rows += [
        ("capital_spelling", 1, SPELL_PROMPT.format(c), CAPITALS[c][::-1].lower(), "C5")
        for c in spelled
    ]
    rng.shuffle(rows)
    return [_record(world, i, *row) for i, row in enumerate(rows)]


def general_corpus(records: list[dict[str, Any]]) -> list[str]:
    """Continued-pretraining text: the true capitals of every country the SFT set does not ask
    about, in each corpus template (the control corpus of X1/X2; facts the base already knows)."""
    asked = {c for c in CAPITALS for r in records if r["prompt"].endswith(f" {c}?")}
    asked |= {c for c in CAPITALS for r in records if f" {c} " in r["prompt"]}
    return [
        template.format(attribute="capital", name=country, value=capital)
        for country, capital in sorted(CAPITALS.items())
        if country not in asked
        for template in CORPUS_TEMPLATES
    ]
