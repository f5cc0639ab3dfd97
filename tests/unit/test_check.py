"""The check stage (pipelines/check.py): the whole params.yaml and the user's input files are
validated before any stage runs, and the manifests it writes change exactly when the data a
first stage reads changes."""

import json

import numpy as np
import pytest
import yaml

from components.common.nifti import save_nifti
from pipelines.check import FIRST_STAGES, main
from tests.conftest import REPO_ROOT
from tests.ct_volumes import write_tiny_task

MSD_SEG = {"train_domains": ["msd"], "test_domains": ["site2"]}
# bad user files: name and content (None: no file)
USER_FILES = {
    "missing jsonl": ("missing.jsonl", None),
    "bad jsonl": ("bad.jsonl", '{"prompt": "a", "response": "b"}\n{"prompt": \n'),
    "no response": ("no_response.jsonl", '{"prompt": "a"}\n'),
    "empty jsonl": ("empty.jsonl", "\n"),
}


def run_check(tmp_path, params: dict) -> tuple[int, dict[str, dict]]:
    (tmp_path / "params.yaml").write_text(yaml.safe_dump(params))
    out = tmp_path / "inputs"
    code = main(["--params", str(tmp_path / "params.yaml"), "--out", str(out)])
    manifests = {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}
    return code, manifests


def msd_params(tmp_path, **domains) -> dict:
    return {
        "ct_data": {"source": "msd", "msd_domains": {k: str(v) for k, v in domains.items()}},
        "seg_train": MSD_SEG,
    }


def test_default_params_pass_with_empty_manifests(tmp_path):
    code, manifests = run_check(tmp_path, {})
    assert code == 0 and manifests == {stage: {} for stage in FIRST_STAGES}


def test_user_jsonl_is_listed_and_appending_to_it_changes_only_data_prep(tmp_path):
    train = tmp_path / "my.jsonl"
    train.write_text('{"prompt": "a", "response": "b"}\n')
    params = {"data_prep": {"source": "user", "user_train": str(train)}}
    _, before = run_check(tmp_path, params)
    files = before["data_prep"]["data_prep.user_train"]["files"]
    assert list(files) == ["my.jsonl"] and files["my.jsonl"]["size"] == train.stat().st_size
    with train.open("a") as handle:
        handle.write('{"prompt": "c", "response": "d"}\n')
    _, after = run_check(tmp_path, params)
    assert after["data_prep"] != before["data_prep"]
    assert after["ct_data"] == before["ct_data"] == {}


def test_a_changed_volume_in_an_msd_folder_changes_the_ct_data_manifest(tmp_path):
    msd = write_tiny_task(tmp_path / "msd")
    site2 = write_tiny_task(tmp_path / "site2", seed=1)
    params = msd_params(tmp_path, msd=msd, site2=site2)
    code, before = run_check(tmp_path, params)
    assert code == 0
    listed = before["ct_data"]["ct_data.msd_domains.msd"]["files"]
    assert {"dataset.json", "imagesTr/case_000.nii.gz", "labelsTr/case_002.nii.gz"} <= set(listed)
    label = np.zeros((16, 16, 16), np.uint8)
    label[4:8, 4:8, 4:8] = 2
    save_nifti(site2 / "labelsTr/case_001.nii.gz", label, np.diag([1.0, 1.0, 2.0, 1.0]))
    _, after = run_check(tmp_path, params)
    assert (
        after["ct_data"]["ct_data.msd_domains.msd"] == before["ct_data"]["ct_data.msd_domains.msd"]
    )
    assert after["ct_data"] != before["ct_data"] and after["data_prep"] == before["data_prep"]


@pytest.mark.parametrize(
    "case, named",
    [
        ("bad value", "params.yaml [pretrain.max_steps]: "),
        ("missing jsonl", "missing.jsonl [data_prep.user_train]: file not found"),
        ("bad jsonl", "bad.jsonl:2: malformed JSON"),
        ("no response", "no_response.jsonl:1 [response]: "),
        ("empty jsonl", "empty.jsonl: file is empty"),
        ("missing labelsTr", "labelsTr [ct_data.msd_domains.msd]: folder not found"),
        ("listed volume missing", "case_001.nii.gz: listed in dataset.json but missing"),
        ("unknown seg domain", "[seg_train.test_domains]: unknown domain(s) ['C']"),
        (
            "no lesions",
            "[seg_train.target]: a lesion model, but no training label of domain(s) msd",
        ),
    ],
)
def test_bad_input_fails_in_one_line_naming_it_and_writes_nothing(tmp_path, capsys, case, named):
    msd = write_tiny_task(tmp_path / "msd", lesions=case != "no lesions")
    params = msd_params(tmp_path, msd=msd, site2=write_tiny_task(tmp_path / "site2", seed=1))
    if case == "bad value":
        params["pretrain"] = {"max_steps": -1}
    elif case in USER_FILES:
        name, text = USER_FILES[case]
        if text is not None:
            (tmp_path / name).write_text(text)
        params["data_prep"] = {"source": "user", "user_train": str(tmp_path / name)}
    elif case == "missing labelsTr":
        for path in (msd / "labelsTr").iterdir():
            path.unlink()
        (msd / "labelsTr").rmdir()
    elif case == "listed volume missing":
        (msd / "imagesTr/case_001.nii.gz").unlink()
    elif case == "unknown seg domain":
        params["seg_train"] = {"train_domains": ["msd"], "test_domains": ["C"]}
    code, manifests = run_check(tmp_path, params)
    error = capsys.readouterr().err
    assert code == 2 and manifests == {}
    assert error.startswith("error: ") and named in error and error.count("\n") == 1


def test_every_stage_runs_after_the_check():
    """A stage that could run before the check would remove its outputs before a bad value is
    found: every stage is downstream of it, the first ones through their manifests."""
    stages = yaml.safe_load((REPO_ROOT / "dvc.yaml").read_text())["stages"]
    outs = {
        name: [next(iter(out)) if isinstance(out, dict) else out for out in stage.get("outs", [])]
        for name, stage in stages.items()
    }

    def upstream(name: str) -> set[str]:
        deps = stages[name].get("deps", [])
        return {
            other
            for other, paths in outs.items()
            if any(dep == path or dep.startswith(f"{path}/") for dep in deps for path in paths)
        }

    assert all(upstream(name) for name in stages if name != "check")
    first = {name for name in stages if upstream(name) == {"check"}}
    assert first == set(FIRST_STAGES)
    for name in FIRST_STAGES:
        assert f"data/inputs/{name}.json" in stages[name]["deps"]


def test_atm_corpus_and_questions_are_listed_and_a_bad_gold_id_is_named(tmp_path, capsys):
    corpus, questions = tmp_path / "corpus.jsonl", tmp_path / "questions.jsonl"
    corpus.write_text('{"id": "d1", "title": "A", "text": "Kobami plays the harp."}\n')
    good = '{"id": "q1", "question": "Q?", "answers": ["harp"], "split": "train", "gold": ["d1"]}'
    questions.write_text(good + "\n" + good.replace("q1", "q2").replace("train", "test") + "\n")
    params = {"atm_data": {"corpus_file": str(corpus), "questions_file": str(questions)}}
    code, manifests = run_check(tmp_path, params)
    assert code == 0
    assert set(manifests["atm_data"]) == {"atm_data.corpus_file", "atm_data.questions_file"}
    questions.write_text(good.replace('["d1"]', '["d9"]') + "\n")
    (tmp_path / "again").mkdir()
    code, manifests = run_check(tmp_path / "again", params)
    error = capsys.readouterr().err
    assert code == 2 and manifests == {}
    assert "questions.jsonl:1 [gold]: not a corpus id: 'd9'" in error


def test_govern_samples_are_listed_and_a_missing_teacher_is_named(tmp_path, capsys):
    samples = tmp_path / "samples.jsonl"
    good = '{"id": "a", "split": "test", "features": [0.1], "teachers": {"x": 1.0, "y": 0.5}}'
    samples.write_text(good + "\n")
    params = {"govern_data": {"samples_file": str(samples)}}
    code, manifests = run_check(tmp_path, params)
    assert code == 0 and set(manifests["govern_data"]) == {"govern_data.samples_file"}
    samples.write_text(good + "\n" + good.replace(', "y": 0.5', "") + "\n")
    (tmp_path / "again").mkdir()
    code, manifests = run_check(tmp_path / "again", params)
    assert code == 2 and manifests == {}
    assert (
        "samples.jsonl:2 [teachers]: expected an object with the teachers"
        in capsys.readouterr().err
    )
