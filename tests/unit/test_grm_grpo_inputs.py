"""E-GRM stage 2's inputs (components/grm_scorer/grpo_step.py): its prompts, bad input and the
pass-through. The reward formulas are pinned in test_formulas_egrm.py."""

import json

import pytest

from components.common.io import ProjectError
from components.grm_scorer.grpo_step import grpo_prompts, pass_through


def test_prompts_are_the_cot_records_cycled(tmp_path):
    import json

    data = tmp_path / "train.jsonl"
    records = [
        {"prompt": "1+2=", "meta": {"mode": "direct", "gold": "3", "terms": [1, 2]}},
        {"prompt": "1+2=\nthink", "meta": {"mode": "cot", "gold": "3", "terms": [1, 2]}},
        {"prompt": "4+4=\nthink", "meta": {"mode": "cot", "gold": "8", "terms": [4, 4]}},
    ]
    data.write_text("".join(json.dumps(r) + "\n" for r in records))
    prompts = grpo_prompts(data, 3)
    assert [p["prompt"] for p in prompts] == ["1+2=\nthink", "4+4=\nthink", "1+2=\nthink"]
    assert prompts[1] == {"prompt": "4+4=\nthink", "question": "4+4=", "gold": "8"}


def test_bad_inputs_name_the_file_and_field(tmp_path):
    data = tmp_path / "train.jsonl"
    data.write_text('{"prompt": "1+2=", "meta": {"mode": "cot"}}\n')
    with pytest.raises(ProjectError) as error:
        grpo_prompts(data, 1)
    assert error.value.file == data and error.value.line == 1 and error.value.field == "meta"
    with pytest.raises(ProjectError, match="no config.json") as error:
        pass_through(tmp_path / "missing", tmp_path / "out", tmp_path / "reports")
    assert error.value.file == tmp_path / "missing"


def test_steps_zero_passes_the_policy_through_without_torch(tmp_path):
    import subprocess
    import sys

    policy = tmp_path / "policy"
    policy.mkdir()
    (policy / "config.json").write_text("{}")
    (policy / "model.safetensors").write_bytes(b"weights")
    code = (
        "import sys\nfrom pathlib import Path\n"
        "from components.grm_scorer.grpo_step import run\n"
        "from components.grm_scorer.params import GrmParams\n"
        f"m = run(GrmParams(), 'tiny', Path('nowhere'), Path({str(policy)!r}), Path('nowhere'),"
        f" Path({str(tmp_path / 'out')!r}), Path({str(tmp_path / 'reports')!r}))\n"
        "assert m == {'grpo.steps': 0.0}, m\n"
        "print(sorted({'torch', 'trl', 'mlflow', 'transformers'} & set(sys.modules)))"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.strip() == "[]"
    assert (tmp_path / "out" / "model.safetensors").read_bytes() == b"weights"
    # a declared DVC output of the stage: it must exist after a pass-through too
    assert json.loads((tmp_path / "reports" / "source.json").read_text())["grpo.steps"] == 0
