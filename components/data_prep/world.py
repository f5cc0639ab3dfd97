"""A deterministic synthetic world and the tasks built on it.

The world is a set of invented entities with attributes. Its fact sentences form the pretraining
corpus (the tiny model's "pre-training knowledge"); the SFT set mixes four tasks of different
kinds: string reversal (algorithmic), 2-digit addition (arithmetic), key→value recall (pure
memorisation; evaluated on training keys) and fact QA (knowledge extraction; evaluated on entities
whose QA pairs were never trained, so only the pretraining corpus can supply the answer)."""

from __future__ import annotations

import random
import string
from dataclasses import dataclass

ATTRIBUTES: dict[str, tuple[str, ...]] = {
    "color": ("red", "blue", "green", "amber", "violet", "teal", "gray", "pink"),
    "city": ("Oslo", "Lima", "Cairo", "Quito", "Hanoi", "Perth", "Dakar", "Riga"),
    "job": ("baker", "pilot", "nurse", "judge", "miner", "tailor", "farmer", "poet"),
    "pet": ("cat", "dog", "owl", "goat", "crab", "frog", "horse", "snake"),
}
FACT_TEMPLATES = (
    "The {attribute} of {name} is {value}.",
    "{name} has {value} as {attribute}.",
    "Everyone knows the {attribute} of {name}: {value}.",
)
SYLLABLES = ("ka", "lo", "mi", "ru", "ze", "ta", "vo", "ni", "pe", "su", "da", "fi", "go", "xu")


@dataclass(frozen=True)
class Entity:
    name: str
    attributes: dict[str, str]


@dataclass(frozen=True)
class Example:
    task: str
    prompt: str
    response: str
    meta: dict


def make_world(n_entities: int, rng: random.Random) -> list[Entity]:
    names: set[str] = set()
    while len(names) < n_entities:
        names.add("".join(rng.choice(SYLLABLES) for _ in range(3)).capitalize())
    return [
        Entity(name, {attr: rng.choice(values) for attr, values in ATTRIBUTES.items()})
        for name in sorted(names)
    ]


def fact_sentences(entity: Entity) -> list[str]:
    return [
        template.format(attribute=attr, name=entity.name, value=value)
        for attr, value in entity.attributes.items()
        for template in FACT_TEMPLATES
    ]


def pretraining_corpus(world: list[Entity], repeats: int, rng: random.Random) -> list[str]:
    """Every fact in every template, `repeats` times, shuffled; one sentence per line."""
    lines = [sentence for entity in world for sentence in fact_sentences(entity)] * repeats
    rng.shuffle(lines)
    return lines


def reverse_example(rng: random.Random) -> Example:
    # Letters are space-separated so that every letter is its own token for any tokenizer.
    letters = [rng.choice(string.ascii_lowercase) for _ in range(rng.randint(5, 8))]
    return Example("reverse", f"reverse: {' '.join(letters)}", " ".join(reversed(letters)), {})


def add_example(rng: random.Random) -> Example:
    a, b = rng.randint(10, 99), rng.randint(10, 99)
    return Example("add", f"add: {a} + {b}", str(a + b), {"a": a, "b": b})


def recall_table(n_keys: int, rng: random.Random) -> dict[str, str]:
    keys: set[str] = set()
    while len(keys) < n_keys:
        keys.add("".join(rng.choice(string.ascii_lowercase) for _ in range(4)))
    return {key: str(rng.randint(100, 999)) for key in sorted(keys)}


def recall_example(key: str, value: str) -> Example:
    return Example("recall", f"recall: {key}", value, {"key": key})


def conflicting_values(table: dict[str, str], seed: int) -> dict[str, str]:
    """The interference partner of a recall table (the A-C list of the A-B/A-C paradigm): the same
    keys, each with a different 3-digit value, drawn from its own generator so that the main
    world's random stream (and so the default data) is unchanged."""
    rng = random.Random(f"recall_alt:{seed}")
    out = {}
    for key, value in table.items():
        other = str(rng.randint(100, 998))
        out[key] = other if other != value else "999"
    return out


def recall_alt_example(key: str, value: str) -> Example:
    return Example("recall_alt", f"recall alt: {key}", value, {"key": key})


def fact_qa_example(entity: Entity, attribute: str) -> Example:
    return Example(
        "fact_qa",
        f"question: what is the {attribute} of {entity.name}?",
        entity.attributes[attribute],
        {"entity": entity.name, "attribute": attribute},
    )


def unique_examples(make, count: int, rng: random.Random, exclude: set[str]) -> list[Example]:
    """`count` examples whose prompts are new (not in `exclude`); adds them to `exclude`."""
    examples: list[Example] = []
    for _ in range(count * 50):
        if len(examples) == count:
            break
        example = make(rng)
        if example.prompt not in exclude:
            exclude.add(example.prompt)
            examples.append(example)
    return examples
