"""Great Expectations suite for SFT records, run before anything is written.

Ephemeral context, a fresh one per validation, the DataFrame passed as a batch parameter. A failed
suite raises a ProjectError naming the file, the first offending line and the field; the full
result JSON is returned so the step can save and log it either way."""

from __future__ import annotations

import copy
import logging
import os
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from components.common.io import ProjectError, write_json

# GX, pandas and MLflow are imported by the functions that use them: GX alone costs seconds of
# start-up that a step importing this module for its error or its types need not pay.
if TYPE_CHECKING:
    import great_expectations as gx

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")  # offline: no usage statistics

RECORD_COLUMNS = ["line", "id", "task", "stage", "prompt", "response", "meta"]


def sft_expectations(
    tasks: Sequence[str], max_prompt: int, max_response: int, section: str | None = None
) -> list[gx.expectations.Expectation]:
    """The SFT record contract. With `section`, each limit's expectation names the params key that
    sets it (`<section>.tasks`, `.max_prompt_chars`, `.max_response_chars`) in its error."""
    import great_expectations as gx

    ex = gx.expectations

    def key(name: str) -> dict[str, str]:
        return {"param": f"{section}.{name}"} if section else {}

    return [
        ex.ExpectTableColumnsToMatchSet(column_set=RECORD_COLUMNS, exact_match=True),
        ex.ExpectTableRowCountToBeBetween(min_value=1),
        ex.ExpectColumnValuesToBeUnique(column="id"),
        ex.ExpectColumnValuesToBeInSet(column="task", value_set=list(tasks), meta=key("tasks")),
        ex.ExpectColumnValuesToBeBetween(column="stage", min_value=0),
        ex.ExpectColumnValueLengthsToBeBetween(
            column="prompt", min_value=1, max_value=max_prompt, meta=key("max_prompt_chars")
        ),
        ex.ExpectColumnValueLengthsToBeBetween(
            column="response", min_value=1, max_value=max_response, meta=key("max_response_chars")
        ),
    ]


def validate_records(
    records: list[dict[str, Any]],
    expectations: list[gx.expectations.Expectation],
    source: str,
    suite_name: str = "sft_records",
    columns: Sequence[str] = RECORD_COLUMNS,
) -> dict[str, Any]:
    """Validate records (each with its source `line`) as a DataFrame of `columns`; raise on
    failure, else return the result."""
    import great_expectations as gx
    import pandas as pd

    frame = pd.DataFrame(records, columns=list(columns))
    # GX sets this module's logger to INFO when it is imported, then logs the temporary folder of
    # a docs site we never build on every ephemeral context
    logging.getLogger("great_expectations.data_context.types.base").setLevel(logging.WARNING)
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
    columns: Sequence[str] = RECORD_COLUMNS,
) -> None:
    """`validate_records`, with its result JSON written to `report` and logged to the active
    MLflow run whether the suite passes or fails (a failure is raised after that)."""
    try:
        payload = validate_records(records, expectations, source, suite_name, columns)
    except DataValidationError as error:
        payload = error.payload
        raise
    finally:
        write_json(report, payload)
        import mlflow

        mlflow.log_artifact(str(report), artifact_path="validation")


class DataValidationError(ProjectError):
    """A failed suite: the message names the first offending line and field, and lists the rest."""

    def __init__(self, source: str, result: Any, payload: dict[str, Any]) -> None:
        self.payload = payload
        failures = [r for r in result.results if not r.success]
        first = failures[0]
        # a multi-column expectation names the field to blame in its `meta`
        field = (first.expectation_config.meta or {}).get("field")
        field = field or first.expectation_config.kwargs.get("column")
        line, description = _describe(first)
        message = f"{description} ({first.expectation_config.type}"
        rows = first.result.get("unexpected_index_list") or []
        message += f"; {len(rows)} row(s) in all)" if rows else ")"
        others = ", ".join(r.expectation_config.type for r in failures[1:])
        if others:
            message += f"; also failed: {others}"
        super().__init__(message, file=source, line=line, field=field)


def _describe(failure: Any) -> tuple[int | None, str]:
    """(line, what is wrong) for one failed expectation, with values shortened and the params key
    of a limit named (from the expectation's `meta`)."""
    config = failure.expectation_config
    kind, kwargs = config.type, config.kwargs
    field = kwargs.get("column")
    limit = (config.meta or {}).get("param")
    rows = failure.result.get("unexpected_index_list") or []
    if kind == "expect_table_row_count_to_be_between":
        count = failure.result.get("observed_value")
        return None, "file is empty" if count == 0 else f"{count} records, too few"
    if not rows:
        return None, f"failed {kind}"
    line, value = int(rows[0]["line"]), rows[0].get(field)
    if (config.meta or {}).get("message"):  # what is wrong, worded by the expectation's author
        return line, config.meta["message"]
    if kind == "expect_column_values_to_be_unique":
        return _first_repeat(rows, field)
    if kind == "expect_column_value_lengths_to_be_between" and isinstance(value, str):
        if kwargs.get("max_value") is not None and len(value) > kwargs["max_value"]:
            return (
                line,
                f"{len(value)} characters, over {limit or 'the limit'} = {kwargs['max_value']}",
            )
        return line, f"{len(value)} characters, under the minimum {kwargs.get('min_value')}"
    if kind == "expect_column_values_to_be_in_set":
        allowed = ", ".join(map(str, kwargs["value_set"]))
        found = sorted({str(row.get(field)) for row in rows})
        listed = ", ".join(_shorten(task, 20) for task in found[:5]) + (
            ", ..." if found[5:] else ""
        )
        others = f" (all not in it: {listed})" if len(found) > 1 else ""
        return (
            line,
            f"{field} {_shorten(value)} is not in {limit or 'the set'} = [{allowed}]{others}",
        )
    return line, f"value {_shorten(value)}"


def _first_repeat(rows: list[dict[str, Any]], field: str) -> tuple[int, str]:
    """The earliest line repeating an earlier row's value, and which line it repeats."""
    first_line: dict[Any, int] = {}
    for row in sorted(rows, key=lambda r: int(r["line"])):
        value, line = row.get(field), int(row["line"])
        if value in first_line:
            return line, f"duplicate {field} {_shorten(value)} (first at line {first_line[value]})"
        first_line[value] = line
    return int(rows[0]["line"]), f"duplicate {field} {_shorten(rows[0].get(field))}"


def _shorten(value: Any, limit: int = 60) -> str:
    """repr(value), cut to `limit` characters with its full length named, so a huge value is never
    echoed whole into a one-line error."""
    text = repr(value)
    if len(text) <= limit:
        return text
    size = len(value) if isinstance(value, str) else len(text)
    return f"{text[:limit]}... ({size} characters)"
