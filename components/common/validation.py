"""Great Expectations suite for SFT records, run before anything is written.

Ephemeral context, a fresh one per validation, the DataFrame passed as a batch parameter. A failed
suite raises a ProjectError naming the file, the first offending line and the field; the full
result JSON is returned so the step can save and log it either way."""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # offline: no usage statistics

import great_expectations as gx  # noqa: E402
import mlflow  # noqa: E402
import pandas as pd  # noqa: E402

from components.common.io import ProjectError, write_json  # noqa: E402

RECORD_COLUMNS = ["line", "id", "task", "stage", "prompt", "response", "meta"]


def sft_expectations(
    tasks: Sequence[str], max_prompt: int, max_response: int
) -> list[gx.expectations.Expectation]:
    ex = gx.expectations
    return [
        ex.ExpectTableColumnsToMatchSet(column_set=RECORD_COLUMNS, exact_match=True),
        ex.ExpectTableRowCountToBeBetween(min_value=1),
        ex.ExpectColumnValuesToBeUnique(column="id"),
        ex.ExpectColumnValuesToBeInSet(column="task", value_set=list(tasks)),
        ex.ExpectColumnValuesToBeBetween(column="stage", min_value=0),
        ex.ExpectColumnValueLengthsToBeBetween(column="prompt", min_value=1, max_value=max_prompt),
        ex.ExpectColumnValueLengthsToBeBetween(
            column="response", min_value=1, max_value=max_response
        ),
    ]


def validate_records(
    records: list[dict[str, Any]],
    expectations: list[gx.expectations.Expectation],
    source: str,
    suite_name: str = "sft_records",
) -> dict[str, Any]:
    """Validate records (each with its source `line`); raise on failure, else return the result."""
    frame = pd.DataFrame(records, columns=RECORD_COLUMNS)
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = {"globally": False}
    batch = context.data_sources.add_pandas("records").add_dataframe_asset("sft")
    definition = batch.add_batch_definition_whole_dataframe("whole")
    suite = context.suites.add(
        gx.ExpectationSuite(name=suite_name, expectations=[copy.copy(e) for e in expectations])
    )
    validation = context.validation_definitions.add(
        gx.ValidationDefinition(name=f"validate-{suite.name}", data=definition, suite=suite)
    )
    result = validation.run(
        batch_parameters={"dataframe": frame},
        result_format={"result_format": "COMPLETE", "unexpected_index_column_names": ["line"]},
    )
    payload = {"source": source, "success": result.success, "result": result.to_json_dict()}
    if not result.success:
        raise DataValidationError(source, result, payload)
    return payload


def validate_and_report(
    records: list[dict[str, Any]],
    expectations: list[gx.expectations.Expectation],
    source: str,
    report: Path,
    suite_name: str = "sft_records",
) -> None:
    """`validate_records`, with its result JSON written to `report` and logged to the active
    MLflow run whether the suite passes or fails (a failure is raised after that)."""
    try:
        payload = validate_records(records, expectations, source, suite_name)
    except DataValidationError as error:
        payload = error.payload
        raise
    finally:
        write_json(report, payload)
        mlflow.log_artifact(str(report), artifact_path="validation")


class DataValidationError(ProjectError):
    """A failed suite: the message names the first offending line and field, and lists the rest."""

    def __init__(self, source: str, result: Any, payload: dict[str, Any]) -> None:
        self.payload = payload
        failures = [r for r in result.results if not r.success]
        first = failures[0]
        kwargs = first.expectation_config.kwargs
        field = kwargs.get("column")
        rows = first.result.get("unexpected_index_list") or []
        line = int(rows[0]["line"]) if rows else None
        others = ", ".join(r.expectation_config.type for r in failures[1:])
        message = f"failed {first.expectation_config.type}"
        if rows:
            message += f" (value {rows[0].get(field)!r}; {len(rows)} row(s) in all)"
        if others:
            message += f"; also failed: {others}"
        super().__init__(message, file=source, line=line, field=field)
