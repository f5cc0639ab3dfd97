"""`python -m pipelines.check`: the first DVC stage. It validates the whole params.yaml (every
room's sections) and the user's input files it names, then writes one manifest per first stage,
`<out>/<stage>.json`: for each input the stage reads, every file's path, size and MD5.

Why a stage of its own: DVC removes a stage's outputs before it runs the command, so a bad value
found inside `data_prep` would already have cost the last good outputs. Every first stage
depends on its manifest, so this stage (`always_changed`) runs before all of them and a failure
stops `dvc repro` / `dvc exp run` with every output in place. The manifests also make the user's
data a real dependency: changed data changes a manifest, which re-runs the stage that reads it.

It imports no ML library, so it takes well under a second when no user data is configured."""

from __future__ import annotations

import argparse
import hashlib
import sys
from pathlib import Path

from components.atm.questions import read_questions
from components.common.io import ProjectError, write_json
from components.common.msd import domain_cases, require_lesions
from components.common.records import load_user_records
from components.common.retrieval import read_corpus
from components.govern.samples import user_records
from components.rlhb.logs import read_logs
from pipelines.params import ProjectParams, load_project_params

# the first stages of dvc.yaml: each depends on its manifest (grm_data reads no user data, but
# depending on an empty manifest makes the check run before it too)
FIRST_STAGES = (
    "data_prep",
    "ct_data",
    "grm_data",
    "knowtuning_data",
    "atm_data",
    "govern_data",
    "rlhb_data",
)


def md5_of(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "md5").hexdigest()


def describe_files(path: Path) -> dict[str, dict[str, int | str]]:
    """Every file of `path` (a file, or a folder walked recursively) by its relative path."""
    files = [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    base = path.parent if path.is_file() else path
    return {
        file.relative_to(base).as_posix(): {"size": file.stat().st_size, "md5": md5_of(file)}
        for file in files
    }


def user_inputs(params: ProjectParams) -> dict[str, dict[str, str]]:
    """The user's files and folders each first stage reads: {stage: {params key: path}}."""
    inputs: dict[str, dict[str, str]] = {stage: {} for stage in FIRST_STAGES}
    prep = params.data_prep
    if prep.source == "user":
        for key in ("user_train", "user_eval"):
            if getattr(prep, key):
                inputs["data_prep"][f"data_prep.{key}"] = getattr(prep, key)
    for key in ("train_file", "test_file"):
        if getattr(params.knowtuning_data, key):
            inputs["knowtuning_data"][f"knowtuning_data.{key}"] = getattr(
                params.knowtuning_data, key
            )
    for key in ("corpus_file", "questions_file"):
        if getattr(params.atm_data, key):
            inputs["atm_data"][f"atm_data.{key}"] = getattr(params.atm_data, key)
    if params.govern_data.samples_file:
        inputs["govern_data"]["govern_data.samples_file"] = params.govern_data.samples_file
    if params.rlhb_data.logs_file:
        inputs["rlhb_data"]["rlhb_data.logs_file"] = params.rlhb_data.logs_file
    if params.ct_data.source == "msd":
        for name, folder in params.ct_data.msd_domains.items():
            inputs["ct_data"][f"ct_data.msd_domains.{name}"] = folder
    return inputs


def check_file_exists(key: str, path: Path) -> None:
    if not path.is_file():
        raise ProjectError("file not found", file=path, field=key)


def check_jsonl(key: str, path: Path) -> None:
    """Every record of a user's SFT file is well-formed (its content is data_prep's to judge)."""
    check_file_exists(key, path)
    load_user_records(path)


def check_msd_folder(key: str, folder: Path) -> None:
    """An MSD task folder: imagesTr/, labelsTr/ and a dataset.json whose files all exist (the
    volumes themselves are checked by ct_data)."""
    for sub in ("", "imagesTr", "labelsTr"):
        if not (folder / sub).is_dir():
            raise ProjectError("folder not found", file=folder / sub, field=key)
    domain_cases(folder)


def check_seg_domains(params: ProjectParams) -> None:
    """seg_train's domains must be ones ct_data provides, and a lesion model's user domains must
    have lesion labels (seg_train would fail only after ct_data, having removed its outputs)."""
    ct, seg = params.ct_data, params.seg_train
    known = set(ct.msd_domains) if ct.source == "msd" else set(ct.domains)
    for key in ("train_domains", "test_domains"):
        unknown = sorted(set(getattr(seg, key)) - known)
        if unknown:
            raise ProjectError(
                f"unknown domain(s) {unknown}; ct_data provides {sorted(known)}",
                field=f"seg_train.{key}",
            )
    if ct.source == "msd" and seg.target == "lesion":
        require_lesions({name: domain_cases(ct.msd_domains[name]) for name in seg.train_domains})


def check_atm_files(params: ProjectParams) -> None:
    """ATM's corpus and questions, line by line (a question's gold ids must be corpus ids)."""
    data = params.atm_data
    if data.corpus_file is None or data.questions_file is None:
        return
    corpus = read_corpus(data.corpus_file)
    read_questions(Path(data.questions_file), {document.id for document in corpus})


def check_govern_samples(key: str, path: Path) -> None:
    """Every line of the user's GOVERN samples names the same teachers (values: govern_data's)."""
    check_file_exists(key, path)
    user_records(path)


def check_behaviour_logs(params: ProjectParams) -> None:
    """Every line of the user's behaviour logs has the fields and the metrics rlhb_data reads."""
    data = params.rlhb_data
    if data.logs_file is not None:
        read_logs(Path(data.logs_file), data.metrics)


# how each first stage's inputs are checked (JSONL files, MSD task folders)
CHECK_INPUT = {
    "data_prep": check_jsonl,
    "ct_data": check_msd_folder,
    "knowtuning_data": check_jsonl,
    "atm_data": check_file_exists,  # their content together: check_atm_files
    "govern_data": check_govern_samples,
    "rlhb_data": check_file_exists,  # the lines with the metrics: check_behaviour_logs
}


def check(params: ProjectParams) -> dict[str, dict]:
    """Check the user's inputs; return each first stage's manifest."""
    inputs = user_inputs(params)
    for stage, paths in inputs.items():
        for key, path in paths.items():
            CHECK_INPUT[stage](key, Path(path))
    check_seg_domains(params)
    check_atm_files(params)
    check_behaviour_logs(params)
    return {
        stage: {
            key: {"path": path, "files": describe_files(Path(path))} for key, path in paths.items()
        }
        for stage, paths in inputs.items()
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.check",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--params", default="params.yaml", help="the project's params file")
    parser.add_argument(
        "--set",
        dest="overrides",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a parameter, e.g. --set data_prep.user_train=my.jsonl (repeatable)",
    )
    parser.add_argument(
        "--out",
        type=Path,
        default=Path("data/inputs"),
        help="where the manifests go, <stage>.json per first stage (default: data/inputs)",
    )
    args = parser.parse_args(argv)
    try:
        manifests = check(load_project_params(args.params, args.overrides))
    except ProjectError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    for stage, manifest in manifests.items():
        write_json(args.out / f"{stage}.json", manifest)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
