"""KnowTuning's synthetic entity world: invented entities whose facts form a dependency chain.

Each entity has a kind (disease, company, city) and one fact per link of its kind's chain. Every
fact after the first names the value the previous fact introduced ("It is caused by P." ->
"P spreads through R."), so the canonical answer to "Tell me about X." is the facts in chain
order, and an answer that states a fact before the one it depends on is out of order. Facts
refer to their entity as "it", as an answer or a document about it does (the corpus documents
are headed "About X:"). Values of one attribute come from that attribute's own pool, so a
sentence parses to exactly one (attribute, antecedent, value) and a falsified fact takes another
value of the same type."""

from __future__ import annotations

import random
import re
from dataclasses import dataclass

from components.common.words import invented_words


@dataclass(frozen=True)
class Link:
    """One attribute of a kind's chain and its sentence. `{entity}` is the entity's name,
    `{prev}` the previous fact's value (absent from the first link), `{value}` this fact's."""

    attribute: str
    template: str
    suffix: str  # what ends the attribute's invented values, so each pool reads as its type
    question: str  # the fine-grained question this fact answers (knowledge augmentation)


CHAINS: dict[str, tuple[Link, ...]] = {
    "disease": (
        Link("cause", "{entity} is caused by {value}.", "vir", "What causes {entity}?"),
        Link("spread", "{prev} spreads through {value}.", "mist", "How does {prev} spread?"),
        Link(
            "symptom",
            "Because of {prev}, {entity} brings {value}.",
            "ache",
            "What does {entity} bring because of {prev}?",
        ),
        Link("treatment", "{prev} is treated with {value}.", "zol", "What treats {prev}?"),
        Link("origin", "{prev} is made from {value}.", "root", "What is {prev} made from?"),
    ),
    "company": (
        Link("founder", "{entity} was founded by {value}.", "son", "Who founded {entity}?"),
        Link("hometown", "{prev} grew up in {value}.", "ville", "Where did {prev} grow up?"),
        Link(
            "product",
            "From {prev}, {entity} ships {value}.",
            "ware",
            "What does {entity} ship from {prev}?",
        ),
        Link("material", "{prev} is built from {value}.", "ite", "What is {prev} built from?"),
        Link("rival", "{prev} is also sold to {value}.", "corp", "Who else buys {prev}?"),
    ),
    "city": (
        Link("river", "{entity} lies on the river {value}.", "flow", "Which river is {entity} on?"),
        Link("source", "The river {prev} starts at {value}.", "peak", "Where does {prev} start?"),
        Link(
            "crop",
            "Below {prev}, {entity} grows {value}.",
            "grain",
            "What does {entity} grow below {prev}?",
        ),
        Link("market", "{prev} is sold in {value}.", "port", "Where is {prev} sold?"),
        Link("festival", "{prev} hosts the feast of {value}.", "fest", "Which feast is in {prev}?"),
    ),
}
ANSWER_QUESTION = "Tell me about {entity}."
# the generalisation test: phrasings never seen in SFT
UNSEEN_QUESTIONS = ("What do you know about {entity}?", "Describe {entity}.", "Explain {entity}.")


@dataclass(frozen=True)
class Fact:
    attribute: str
    prev: str  # the antecedent: the entity for the first link, else the previous fact's value
    value: str


@dataclass(frozen=True)
class Entity:
    name: str
    kind: str
    facts: tuple[Fact, ...]  # in chain (dependency) order


def make_world(n_entities: int, seed: int) -> list[Entity]:
    """`n_entities` entities, kinds in turn. Every value names one entity's fact only (drawn
    without replacement from its attribute's invented words), so a fact that names only the
    previous value ("P spreads through R.") still belongs to one entity."""
    rng = random.Random(seed)
    taken: set[str] = set()
    pools = {
        link.attribute: invented_words(n_entities, link.suffix, rng, taken)
        for chain in CHAINS.values()
        for link in chain
    }
    kinds = list(CHAINS)
    names = invented_words(n_entities, "", rng, taken, syllables=3)
    world = []
    for index, name in enumerate(names):
        kind = kinds[index % len(kinds)]
        facts, prev = [], name
        for link in CHAINS[kind]:
            value = pools[link.attribute].pop()
            facts.append(Fact(link.attribute, prev, value))
            prev = value
        world.append(Entity(name, kind, tuple(facts)))
    return world


def value_pools(world: list[Entity]) -> dict[str, list[str]]:
    """Every value each attribute takes in the world, sorted (what falsification draws from)."""
    pools: dict[str, set[str]] = {}
    for entity in world:
        for fact in entity.facts:
            pools.setdefault(fact.attribute, set()).add(fact.value)
    return {attribute: sorted(values) for attribute, values in pools.items()}


def link_of(attribute: str) -> tuple[str, Link]:
    for kind, chain in CHAINS.items():
        for link in chain:
            if link.attribute == attribute:
                return kind, link
    raise KeyError(attribute)


def render_fact(fact: Fact) -> str:
    """The fact's sentence, its entity as "It" (sentence start) or "it"."""
    _, link = link_of(fact.attribute)
    pronoun = "It" if link.template.startswith("{entity}") else "it"
    return link.template.format(entity=pronoun, prev=fact.prev, value=fact.value)


def fact_question(fact: Fact, entity: str) -> str:
    _, link = link_of(fact.attribute)
    return link.question.format(entity=entity, prev=fact.prev)


def answer(entity: Entity) -> str:
    """The canonical long-form answer: one sentence per fact, in chain order."""
    return " ".join(render_fact(fact) for fact in entity.facts)


def _pattern(template: str) -> re.Pattern[str]:
    escaped = re.escape(template)
    for name in ("entity", "prev", "value"):
        escaped = escaped.replace(re.escape("{" + name + "}"), f"(?P<{name}>[A-Z][a-z]+|it)")
    return re.compile(f"^{escaped}$")


PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = tuple(
    (link.attribute, _pattern(link.template)) for chain in CHAINS.values() for link in chain
)


FIRST_LINKS = {chain[0].attribute for chain in CHAINS.values()}


def split_sentences(text: str) -> list[str]:
    """Sentences of an answer: split after `.`, `!` or `?` followed by whitespace."""
    return [s.strip() for s in re.split(r"(?<=[.!?])\s+", text.strip()) if s.strip()]


def parse_fact(sentence: str, entity: str) -> Fact | None:
    """The fact a sentence of an answer about `entity` states, or None when it matches no
    template or names another entity ("It"/"it" is the entity). A first-link fact's antecedent
    is the entity itself."""
    for attribute, pattern in PATTERNS:
        match = pattern.match(sentence.strip())
        if match is None:
            continue
        found = match.groupdict()
        if found.get("entity", entity) not in (entity, "It", "it"):
            return None
        if attribute in FIRST_LINKS:
            return Fact(attribute, entity, found["value"])
        return Fact(attribute, found["prev"], found["value"])
    return None


def value_reviser(entity: str, pools: dict[str, list[str]]):
    """A falsifier for `negatives.falsify`: a fact sentence about `entity` with its value swapped
    for another value of the same attribute (None for a sentence that does not parse or whose
    attribute has no other value)."""

    def revise(sentence: str, rng: random.Random) -> str | None:
        fact = parse_fact(sentence, entity)
        others = [] if fact is None else [v for v in pools[fact.attribute] if v != fact.value]
        if fact is None or not others:
            return None
        return render_fact(Fact(fact.attribute, fact.prev, rng.choice(others)))

    return revise


def pretraining_corpus(
    world: list[Entity], documents: int, presence: dict[str, float], seed: int
) -> list[str]:
    """`documents` short documents per entity, one per line, shuffled: "About X:" and the
    entity's facts in a random order, each fact present with probability `presence[attribute]`,
    so a rarer attribute is harder to recall (at least one fact per document)."""
    rng = random.Random(seed)
    lines = []
    for entity in world:
        for _ in range(documents):
            facts = [f for f in entity.facts if rng.random() < presence[f.attribute]]
            facts = facts or [rng.choice(entity.facts)]
            rng.shuffle(facts)
            lines.append(f"About {entity.name}: " + " ".join(render_fact(f) for f in facts))
    rng.shuffle(lines)
    return lines
