"""GOVERN's sections: govern_data (the synthetic teacher world, or the user's cached teacher
outputs) and govern (the student's distillation). Every `[D]` value of the method's spec is a
field with the spec's default; the paper gives only the vote rule itself."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, model_validator

from components.common.params import StrictModel, step_schema

TargetMode = Literal["mean_majority", "nearest_majority", "median_all"]
TieMode = Literal["mean_all", "skip"]
StageOneLoss = Literal["mse", "bce"]

# the label-free targets a student can be distilled towards; `labels` trains on the labels alone
Rule = Literal["govern", "mean", "median", "best_single", "confidence", "aekd", "labels"]


class GovernDataParams(StrictModel):
    """govern_data: the spec's synthetic teachers (world.py), or the user's JSONL of samples with
    their cached teacher outputs."""

    seed: int = 0
    dim: int = Field(32, gt=0)  # spec
    teachers: int = Field(5, gt=0)  # spec: K = 5, odd to avoid ties
    # spec: H (`heavy`: large errors drawn per sample) and G (`gaussian`, the control); ours:
    # `regional` (each teacher wrong on its own region of inputs; world.py says why)
    regime: Literal["heavy", "regional", "gaussian"] = "regional"
    heavy_share: float = Field(0.2, ge=0, lt=1)  # spec: P(large error) per (teacher, sample)
    heavy_range: tuple[float, float] = (3.0, 6.0)  # spec: |error| ~ U(3, 6), random sign
    small_std: float = Field(0.3, ge=0)  # spec: the heavy regime's other errors, N(0, 0.3^2)
    gaussian_std: float = Field(0.6, ge=0)  # spec: regime G's errors, N(0, 0.6^2)
    signal_scale: float = Field(2.0, gt=0)  # ours: the std of w.x in f*(x) = w.x + 0.5 sin(u.x)
    # split sizes (spec: 50k unlabeled, 2k labeled, 10k test; ours the demo's); dev is labeled,
    # used only to pick the single best teacher
    sizes: dict[str, int] = Field(
        default_factory=lambda: {"unlabeled": 4000, "labeled": 500, "dev": 500, "test": 2000}
    )
    # the user's data: JSONL of id, split, features (list of floats), teachers ({name: logit}),
    # label (0/1; needed on labeled, dev and test)
    samples_file: str | None = None

    @model_validator(mode="after")
    def _check(self) -> GovernDataParams:
        low, high = self.heavy_range
        if not 0 <= low <= high:
            raise ValueError("govern_data.heavy_range must be (low, high) with 0 <= low <= high")
        missing = {"unlabeled", "test"} - set(self.sizes)
        if missing:
            raise ValueError(f"govern_data.sizes needs {sorted(missing)}")
        return self


class GovernParams(StrictModel):
    """govern: the student, the vote and the baselines trained beside it."""

    seed: int = 0
    rule: Rule = "govern"  # the student registered as `govern-student`
    baselines: tuple[Rule, ...] = ("mean", "median", "best_single", "confidence", "aekd", "labels")
    eps: float = Field(0.0, ge=0)  # spec: dead zone on |t_k - s|
    target_mode: TargetMode = "mean_majority"  # spec
    tie_mode: TieMode = "mean_all"  # spec
    loss: StageOneLoss = "mse"  # spec: MSE on logits (option: BCE on sigmoids)
    temperature: float = Field(1.0, gt=0)  # spec: T of the BCE option
    aekd_cap: float = Field(1.0, gt=0, le=1)  # AE-KD's upper bound on one teacher's weight
    # the supervised ("reinforced") stage on the labeled split, after the label-free one, run
    # with GOVERN's label-selected teachers and, as its baseline, with BCE + mean-KD
    supervised: bool = True
    label_smoothing: float = Field(0.05, ge=0, lt=0.5)  # spec
    lambda_label: float = Field(1.0, ge=0)  # spec
    lambda_kd: float = Field(1.0, ge=0)  # spec
    supervised_epochs: int = Field(10, gt=0)
    # the student and its optimiser (spec: MLP 32-64-1, AdamW 1e-3, 10 epochs)
    hidden: int = Field(64, gt=0)
    epochs: int = Field(10, gt=0)
    batch_size: int = Field(256, gt=0)
    learning_rate: float = Field(1e-3, gt=0)
    weight_decay: float = Field(0.01, ge=0)
    warmup_ratio: float = Field(0.05, ge=0, lt=1)  # spec: warm-up 5 %, then linear decay


GovernDataStep = step_schema("GovernDataStep", govern_data=GovernDataParams)
GovernStep = step_schema("GovernStep", govern=GovernParams)
