"""The real pretrained SmolLM2-135M-Instruct, loaded offline through the `smollm2` profile."""

import pytest

from components.common.models import load_causal_lm, materialize_smollm2
from components.common.sft import greedy_answers

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def smollm2(tmp_path_factory):
    directory = materialize_smollm2(tmp_path_factory.mktemp("cache") / "smollm2")
    return load_causal_lm(directory)


def test_conversion_is_cached(tmp_path_factory, smollm2):
    cache = tmp_path_factory.getbasetemp() / "cache0" / "smollm2"
    before = (cache / "config.json").stat().st_mtime_ns
    assert materialize_smollm2(cache) == cache
    assert (cache / "config.json").stat().st_mtime_ns == before
    assert list(cache.glob("*.safetensors"))


def test_answers_capital_of_france(smollm2):
    model, tokenizer = smollm2
    assert model.config.model_type == "llama" and model.num_parameters() > 100_000_000
    (answer,) = greedy_answers(
        model, tokenizer, ["What is the capital of France?"], max_new_tokens=20, batch_size=1
    )
    assert "Paris" in answer
