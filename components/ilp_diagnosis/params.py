"""ilp_diagnosis's section: detection, signals and the attribution rules' thresholds."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.common.params import StrictModel, step_schema


class IlpRules(StrictModel):
    """Thresholds of the ordered attribution rules (our design choices, not the paper's)."""

    jsd_threshold: float | None = Field(0.1, ge=0, le=1, description="tau_J in bits; null: median")
    base_confidence: float = Field(0.6, ge=0, le=1)
    fact_known: float = Field(0.5, ge=0, le=1, description="fraction of facts the base knows")
    # C2 also needs the base's own facts to disagree with the label when they can be probed
    c2_needs_fact_conflict: bool = True
    # [D] C2 also needs the base's fact probe to put at least this probability on one value other
    # than the label (a confident contradicting belief; a record without a probeable 1-hop fact
    # has none); the MCQ confidence alone cannot tell an over-confident guess about an unknown
    # entity (C1) from a known fact (C2). null: not used
    c2_belief: float | None = Field(None, ge=0, le=1)
    # C1 needs JSD < tau (the spec's test); false: an unknown fact suffices ([D])
    c1_needs_low_jsd: bool = True
    # mcq: the spec's C2 test (base MCQ answer, confidence, JSD); belief ([D]): C2 when the
    # base's fact probe believes another value than the label with p >= c2_belief, whatever the
    # MCQ and the JSD say (the base demonstrably knows a contradicting fact)
    c2_test: Literal["mcq", "belief"] = "mcq"

    @model_validator(mode="after")
    def _belief_needs_threshold(self) -> IlpRules:
        if self.c2_test == "belief" and self.c2_belief is None:
            raise ValueError("rules.c2_test: belief needs rules.c2_belief")
        return self

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
    # values the fact probes score besides the SFT set's answers, per relation (a gazetteer):
    # a relabelled fact's true value is often no record's answer, so the base could not show it
    fact_candidates: dict[str, tuple[str, ...]] = {}
    batch_size: int = Field(64, gt=0)
    max_length: int = Field(96, gt=0)
    max_new_tokens: int = Field(16, gt=0)
    rules: IlpRules = IlpRules()

    @model_validator(mode="after")
    def _check(self) -> IlpParams:
        if not self.seeds:
            raise ValueError("ilp_diagnosis.seeds is empty")
        return self


# what `python -m components.ilp_diagnosis` reads from params.yaml
IlpStep = step_schema("IlpStep", ilp_diagnosis=IlpParams)
