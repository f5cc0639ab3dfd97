"""The planted-cause world and the data-level interventions built on it."""

from collections import Counter

from components.data_prep import planted
from components.data_prep.params import DataPrepParams
from components.data_prep.step import run as data_prep_run
from components.epi_finetune.schedule import build_plan, stages_from_records
from components.ilp_diagnosis import facts, mitigate

WORLD = planted.build_world(0)
TRAIN = WORLD["train"]
CORPUS = "\n".join(WORLD["corpus"])


def by_cause(cause):
    return [r for r in TRAIN if r["meta"]["planted_cause"] == cause]


def test_every_cause_is_planted_and_the_world_is_deterministic():
    counts = Counter(r["meta"]["planted_cause"] for r in TRAIN)
    assert set(counts) == {"control", "C1", "C2", "C3", "C4", "C5"}
    assert 0.01 <= counts["C5"] / len(TRAIN) <= 0.03  # a rare template
    assert planted.build_world(0) == WORLD and planted.build_world(1) != WORLD
    assert {r["stage"] for r in by_cause("C4")} == {0}
    assert {r["stage"] for r in TRAIN if r["meta"]["planted_cause"] != "C4"} == {1}


def test_causes_are_where_the_corpus_says():
    def name(record):
        return facts.extract(record["prompt"], record["response"])[0].subject

    for record in by_cause("C1"):  # never in the corpus
        assert name(record) not in CORPUS
    for record in by_cause("C2"):  # the corpus says v 50 times, the label says v'
        pretrained = record["meta"]["pretrained"]
        assert record["response"].strip() != pretrained
        lines = [line for line in WORLD["corpus"] if name(record) in line]
        assert len(lines) == 50 and all(pretrained in line for line in lines)
    for record in by_cause("control"):
        assert f"The color of {name(record)} is{record['response']}." in CORPUS
    pairs = Counter(r["meta"]["pair"] for r in by_cause("C3"))
    assert set(pairs.values()) == {2}
    for pair in pairs:
        a, b = [r for r in by_cause("C3") if r["meta"]["pair"] == pair]
        assert name(a) == name(b) and a["response"] != b["response"]


def test_data_prep_writes_the_planted_world(tmp_path, mlflow_uri):
    params = DataPrepParams(synthetic="ilp_planted", tokenizer_vocab_size=300)
    metrics = data_prep_run(params, "tiny", tmp_path / "data", tmp_path / "reports")
    assert metrics["train_records"] == len(TRAIN)
    assert (tmp_path / "data/tokenizer").is_dir()


def test_bucketing_never_puts_a_contradictory_pair_in_one_batch():
    groups = [{r["id"] for r in by_cause("C3") if r["meta"]["pair"] == p} for p in range(16)]
    records = mitigate.bucketed(TRAIN, groups)
    plan = build_plan(records, stages_from_records(records), steps=40, samples_per_step=16, seed=0)
    ids = [records[i]["id"] for i in plan.order]
    for step in range(40):
        batch = {mitigate.original_id(i) for i in ids[step * 16 : (step + 1) * 16]}
        assert all(len(batch & g) < 2 for g in groups)
    # the stage structure doubles, every other record keeps training in both halves
    assert len(plan.stages) == 4
    assert len(records) == 2 * len(TRAIN) - sum(len(g) for g in groups)


def test_cpt_mix_and_fact_documents():
    c1 = {r["id"] for r in by_cause("C1")[:3]}
    docs = mitigate.fact_documents(TRAIN, c1, planted.CORPUS_TEMPLATES, repeats=4)
    assert len(docs) == 12
    lines = mitigate.cpt_mix(WORLD["corpus"], docs, 0.8, seed=0, size=500)
    assert len(lines) == 500 and sum(line in docs for line in lines) == 100
    dropped = by_cause("C2")[0]["prompt"].rstrip("?").split()[-1]
    corrected = mitigate.cpt_mix(WORLD["corpus"], [], 0.8, 0, drop_subjects=[dropped], size=500)
    assert not any(dropped in line for line in corrected)


def test_copies_have_fresh_ids_that_map_back():
    extra = mitigate.copies(TRAIN, {TRAIN[0]["id"]}, 3)
    assert len(extra) == 3 and len({r["id"] for r in extra}) == 3
    assert {mitigate.original_id(r["id"]) for r in extra} == {TRAIN[0]["id"]}


def test_originals_keep_one_record_per_id_with_the_interventions_label():
    records = [TRAIN[0], *mitigate.copies(TRAIN, {TRAIN[0]["id"]}, 2)]
    records.append({**TRAIN[1], "id": TRAIN[1]["id"] + mitigate.BUCKET, "task": "fact_qa~b"})
    out = mitigate.originals(records)
    assert [r["id"] for r in out] == [TRAIN[0]["id"], TRAIN[1]["id"]]
    assert out[1]["task"] == "fact_qa"
