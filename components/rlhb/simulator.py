"""The spec's simulated search service (tiny CPU validation): 30 topics x 5 query templates, a
logging policy that answers with good, mediocre and bad templated responses, and users whose
hidden utility over responses produces the logged behaviour.

Hidden utility (spec): with `topic` = the query's topic word is in the response, `length_ok` =
8 <= words <= 16 and `repetition` = some content word occurs twice or more,
    lambda_likes    = max(3 topic + 2 length_ok - 2 repetition, 0.1)
    lambda_dislikes = max(3 (1 - topic) + 2 (1 - length_ok) + 2 repetition, 0.1)   (mirrored)
    true score      = (lambda_likes - lambda_dislikes) / (mean_views (1 + click_rate))
the spec's (L - D) / (PV + C) in expectation at the first position. Evaluation scores it; training
never reads it. Logged behaviour is noisy: the answer's position k (uniform, unlogged) is examined
with probability e = k^-position_bias, and PV ~ Poisson(mean_views e), clicks ~ Bin(PV,
click_rate), likes ~ Poisson(lambda_likes e), dislikes ~ Poisson(lambda_dislikes e), dwell ~
Gamma(clicks, 10 + 5 lambda_likes) seconds."""

from __future__ import annotations

import random
from dataclasses import dataclass

import numpy as np

from components.rlhb.params import RlhbDataParams

TOPICS = (
    "jazz", "chess", "coffee", "tennis", "gardening", "python", "baking", "yoga", "cycling",
    "painting", "camping", "guitar", "sushi", "running", "photography", "knitting", "hiking",
    "poetry", "astronomy", "swimming", "pottery", "skiing", "cooking", "surfing", "drawing",
    "fishing", "dancing", "climbing", "reading", "sailing",
)  # fmt: skip
TEMPLATES = (
    "how do i get better at {topic}",
    "what should a beginner know about {topic}",
    "give me advice on {topic}",
    "why is {topic} worth learning",
    "where do i start with {topic}",
)
TOPIC_OPENERS = ("{topic} rewards patience", "with {topic} begin slowly", "{topic} grows on you")
GENERIC_OPENERS = ("this hobby rewards patience", "begin slowly", "it grows on you")
# content phrases; no content word is shared between two of them
PHRASES = (
    "practice daily",
    "set small goals",
    "find a mentor",
    "join a club",
    "watch experts",
    "keep a journal",
    "rest well",
    "buy decent gear",
    "learn basic rules",
    "record your sessions",
    "ask questions",
    "stay curious",
    "track progress weekly",
    "celebrate wins",
    "read guides",
    "try local classes",
    "warm up first",
    "invest time",
    "share results online",
    "enjoy mistakes",
)
FILLER = "really"
STOPWORDS = frozenset({"a", "an", "the", "and", "or", "on", "with", "your", "you", "it", "at"})
DEFECTS = ("topic", "length", "repetition")


@dataclass(frozen=True)
class Quality:
    topic: bool
    length_ok: bool
    repetition: bool


def queries(params: RlhbDataParams) -> list[dict[str, str]]:
    """Every query of the service: {query, topic, template (0-based)}."""
    return [
        {"query": t.format(topic=topic), "topic": topic, "template": str(k)}
        for topic in TOPICS[: params.topics]
        for k, t in enumerate(TEMPLATES[: params.templates])
    ]


def quality(topic: str, response: str) -> Quality:
    words = response.lower().split()
    content = [w for w in words if w not in STOPWORDS]
    return Quality(
        topic=topic in words,
        length_ok=8 <= len(words) <= 16,
        repetition=len(set(content)) < len(content),
    )


def rates(q: Quality) -> tuple[float, float]:
    """(lambda_likes, lambda_dislikes) of a response's quality."""
    likes = 3 * q.topic + 2 * q.length_ok - 2 * q.repetition
    dislikes = 3 * (not q.topic) + 2 * (not q.length_ok) + 2 * q.repetition
    return max(likes, 0.1), max(dislikes, 0.1)


def true_score(topic: str, response: str, params: RlhbDataParams) -> float:
    likes, dislikes = rates(quality(topic, response))
    return (likes - dislikes) / (params.mean_views * (1 + params.click_rate))


def respond(topic: str, defects: set[str], rng: random.Random) -> str:
    """A templated response with exactly the given defects (a subset of DEFECTS)."""
    for _ in range(100):
        openers = GENERIC_OPENERS if "topic" in defects else TOPIC_OPENERS
        words = rng.choice(openers).format(topic=topic).split()
        if "length" in defects and rng.random() < 0.5:
            target = rng.randint(2, 6)  # too short
        elif "length" in defects:
            target = rng.randint(18, 26)  # too long
        else:
            target = rng.randint(8, 16)
        for phrase in rng.sample(PHRASES, len(PHRASES)):
            if len(words) >= target:
                break
            words += phrase.split()
        words = words[:target]
        if "repetition" in defects:
            at = rng.randrange(len(words) + 1)
            words[at:at] = [FILLER] * 3
        response = " ".join(words)
        q = quality(topic, response)
        found = {"topic": not q.topic, "length": not q.length_ok, "repetition": q.repetition}
        if {d for d, bad in found.items() if bad} == defects:
            return response
    raise RuntimeError(f"no response with defects {sorted(defects)} for topic {topic!r}")


def logging_defects(mix: tuple[float, float, float], rng: random.Random) -> set[str]:
    """The logging policy: good (no defect), mediocre (one), bad (two or three)."""
    kind = rng.choices(("good", "mediocre", "bad"), weights=mix)[0]
    count = {"good": 0, "mediocre": 1, "bad": rng.choice((2, 3))}[kind]
    return set(rng.sample(DEFECTS, count))


def behaviour(q: Quality, params: RlhbDataParams, rng: np.random.Generator) -> dict[str, float]:
    examined = rng.integers(1, params.positions + 1) ** -params.position_bias
    likes, dislikes = rates(q)
    views = int(rng.poisson(params.mean_views * examined))
    clicks = int(rng.binomial(views, params.click_rate))
    return {
        "views": views,
        "clicks": clicks,
        "likes": int(rng.poisson(likes * examined)),
        "dislikes": int(rng.poisson(dislikes * examined)),
        "dwell": round(float(rng.gamma(clicks, 10 + 5 * likes)) if clicks else 0.0, 1),
    }


def simulate_logs(params: RlhbDataParams) -> tuple[list[dict], list[dict[str, str]]]:
    """(logged triplets, every query of the service with `logged`: whether its template is
    logged). The last `eval_templates` templates of each topic are never logged: evaluation asks
    them besides the logged ones, to see what carries over to an unseen phrasing."""
    rng, np_rng = random.Random(params.seed), np.random.default_rng(params.seed)
    unlogged_from = params.templates - params.eval_templates
    service = [{**q, "logged": int(q["template"]) < unlogged_from} for q in queries(params)]
    logged = [q for q in service if q["logged"]]
    logs = []
    for i in range(params.logs):
        q = rng.choice(logged)
        response = respond(q["topic"], logging_defects(params.policy_mix, rng), rng)
        logs.append(
            {
                "id": f"log-{i}",
                "query": q["query"],
                "response": response,
                "behaviour": behaviour(quality(q["topic"], response), params, np_rng),
                "topic": q["topic"],
            }
        )
    return logs, service
