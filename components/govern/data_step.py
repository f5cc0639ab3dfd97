"""govern_data: samples with their teachers' outputs, computed once and cached, validated, written.

    python -m components.govern data --out data/govern --reports reports/govern/data

Outputs in `out_dir`: one JSONL per split (`unlabeled`, `labeled`, `dev`, `test`; the first and
the last required) of `id`, `features` (floats), `teachers` (one logit per teacher, in the order
of teachers.json), `label` (0/1, or null on unlabeled samples) and, in the synthetic world,
`truth` (f*, for the checks; no student reads it); teachers.json (the teachers' names).

The user's samples (govern_data.samples_file) replace the world: one JSONL of `id`, `split`,
`features` (a list of floats, the same length on every line), `teachers` (an object of teacher
name to logit, the same names on every line) and `label` (0 or 1; required on labeled, dev and
test). Teacher outputs are what the teachers would be asked once: computing them is the user's
(or a teacher step's) business, and the student never needs the teachers again. A bad line stops
the stage with its file, line and field, and nothing is written."""

from __future__ import annotations

import logging
from pathlib import Path

from components.common.cli import path_arguments, step_main, step_parser
from components.common.io import (
    ProjectError,
    atomic_path,
    write_json,
    write_jsonl,
)
from components.common.params import Profile
from components.common.repro import seed_everything
from components.common.tracking import step_run
from components.govern import world
from components.govern.params import GovernDataParams, GovernDataStep
from components.govern.samples import SPLITS, row_of, user_records

log = logging.getLogger(__name__)
COLUMNS = ["line", "id", "split", "label", "features", "teachers", "finite"]


def world_records(params: GovernDataParams) -> tuple[dict[str, list[dict]], list[str]]:
    splits = world.make_world(params)
    names = [f"teacher_{k + 1}" for k in range(params.teachers)]
    records = {
        name: [
            {
                "id": f"{name}-{i}",
                "features": [round(float(v), 6) for v in split.features[i]],
                "teachers": [round(float(v), 6) for v in split.teachers[i]],
                "label": None if name == "unlabeled" else int(split.labels[i]),
                "truth": round(float(split.truth[i]), 6),
            }
            for i in range(len(split.labels))
        ]
        for name, split in splits.items()
    }
    return records, names


def expectations(dim: int) -> list:
    import great_expectations as gx

    ex = gx.expectations
    labeled = 'split in ("labeled", "dev", "test")'
    return [
        ex.ExpectTableRowCountToBeBetween(min_value=1),
        ex.ExpectColumnValuesToBeUnique(column="id"),
        ex.ExpectColumnValuesToNotBeNull(column="id"),
        ex.ExpectColumnValuesToBeInSet(column="split", value_set=list(SPLITS)),
        ex.ExpectColumnValuesToBeBetween(column="features", min_value=dim, max_value=dim),
        ex.ExpectColumnValuesToBeBetween(column="teachers", min_value=1),
        ex.ExpectColumnValuesToBeInSet(column="finite", value_set=[True]),
        ex.ExpectColumnValuesToBeInSet(
            column="label", value_set=[0, 1], row_condition=labeled, condition_parser="pandas"
        ),
        ex.ExpectColumnValuesToNotBeNull(
            column="label", row_condition=labeled, condition_parser="pandas"
        ),
    ]


def run(params: GovernDataParams, profile: Profile, out_dir: Path, report_dir: Path) -> dict:
    from components.common.validation import validate_and_report

    seed_everything(params.seed, with_torch=False)
    with step_run("govern_data", profile, params):
        if params.samples_file is not None:
            source = params.samples_file
            records, names, rows = user_records(Path(source))
        else:
            source = "govern:world"
            records, names = world_records(params)
            rows = [
                row_of(n, {**r, "split": split}, r["features"], r["teachers"])
                for n, (split, r) in enumerate(
                    ((s, r) for s, rs in records.items() for r in rs), start=1
                )
            ]
        dim = rows[0]["features"]
        validate_and_report(
            rows, expectations(dim), source, report_dir / "samples.json", "govern_samples", COLUMNS
        )
        for split in ("unlabeled", "test"):
            if not records.get(split):
                raise ProjectError(f"no samples in the {split!r} split", file=source, field="split")
        with atomic_path(out_dir) as tmp:
            tmp.mkdir()
            for split, rs in records.items():
                if rs:
                    write_jsonl(tmp / f"{split}.jsonl", rs)
            write_json(tmp / "teachers.json", names)
        import mlflow

        metrics = {f"{s}_samples": float(len(rs)) for s, rs in records.items() if rs}
        metrics["teachers"] = float(len(names))
        mlflow.log_metrics(metrics)
        log.info("govern_data wrote %s: %s", out_dir, metrics)
        return metrics


def main(argv: list[str] | None = None) -> int:
    parser = step_parser("components.govern data", __doc__, GovernDataStep)
    path_arguments(
        parser,
        "outputs",
        out=("data/govern", "<split>.jsonl and teachers.json"),
        reports=("reports/govern/data", "the validation result"),
    )
    args = parser.parse_args(argv)
    return step_main(
        "govern_data",
        args,
        GovernDataStep,
        lambda p: run(p.govern_data, p.profile, args.out, args.reports),
    )
