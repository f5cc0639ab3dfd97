"""The champion as a user loads it from the registry: the evaluate step's logged model wraps a bare
prompt in the SFT prompt format, decodes greedily and answers without echoing the prompt."""

import mlflow
import pytest
import torch

from components.common.models import build_tiny_model, render_prompt
from components.common.params import TinyModelParams
from components.common.serving import log_answering_model
from components.common.tokenizer import train_bpe_tokenizer

pytestmark = pytest.mark.integration
MAX_NEW_TOKENS = 6


@pytest.fixture(scope="module")
def tiny_lm():
    """A tiny Llama that has memorised one SFT example, `3+4=` → `7`."""
    tokenizer = train_bpe_tokenizer(
        [f"{a}+{b}=\n{a + b}" for a in range(10) for b in range(10)], 270
    )
    torch.manual_seed(0)
    arch = TinyModelParams(
        hidden_size=16, intermediate_size=32, num_hidden_layers=1, num_attention_heads=2
    )
    model = build_tiny_model(arch, tokenizer)
    example = render_prompt(tokenizer, "3+4=") + "7" + tokenizer.eos_token
    ids = tokenizer(example, add_special_tokens=False, return_tensors="pt")["input_ids"]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.03)
    for _ in range(60):
        optimizer.zero_grad()
        model(input_ids=ids, labels=ids).loss.backward()
        optimizer.step()
    return model.eval(), tokenizer


def expected_answer(model, tokenizer, prompt):
    """What SFT evaluation decodes: greedy after the rendered prompt, the new tokens only."""
    ids = tokenizer(render_prompt(tokenizer, prompt), add_special_tokens=False, return_tensors="pt")
    output = model.generate(**ids, max_new_tokens=MAX_NEW_TOKENS, do_sample=False)
    return tokenizer.decode(output[0, ids["input_ids"].shape[1] :], skip_special_tokens=True)


def test_pyfunc_answers_a_bare_prompt_greedily_without_echoing_it(mlflow_uri, tiny_lm):
    model, tokenizer = tiny_lm
    prompt = "3+4="  # no trailing newline: the template adds the tiny profile's
    with mlflow.start_run():
        info = log_answering_model(model, tokenizer, MAX_NEW_TOKENS)
    loaded = mlflow.pyfunc.load_model(info.model_uri)
    answers = [loaded.predict([prompt])[0] for _ in range(3)]
    assert expected_answer(model, tokenizer, prompt) == "7"
    assert answers == ["7"] * 3

    pipeline = mlflow.transformers.load_model(info.model_uri)  # the README's other way
    assert not pipeline.model.generation_config.do_sample
    rendered = render_prompt(tokenizer, prompt)
    outputs = [pipeline(rendered, return_full_text=False)[0]["generated_text"] for _ in range(3)]
    assert outputs == ["7"] * 3
