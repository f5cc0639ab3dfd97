"""`make secrets`: the git-ignored k8s/base/secrets/*.env written from the committed examples,
with a strong random value for each password the cluster generates itself. An existing .env is
kept (its values are live in the cluster); `--check` refuses files that are missing or still
hold an empty or placeholder password."""

from __future__ import annotations

import argparse
import secrets
import sys
from pathlib import Path

SECRETS_DIR = Path(__file__).resolve().parents[1] / "k8s/base/secrets"
# env file -> the keys `make secrets` fills; the other keys keep the example's value
GENERATED = {
    "postgres.env": ("POSTGRES_PASSWORD",),
    "minio.env": ("MINIO_ROOT_PASSWORD",),
}


def strong_password() -> str:
    """256 random bits, URL-safe: no quoting needed in an env file, a URI or a shell."""
    return secrets.token_urlsafe(32)


def fill(example: str, keys: tuple[str, ...]) -> str:
    """The example's lines with each of `keys` given a new strong password."""
    lines = []
    for line in example.splitlines():
        key = line.split("=", 1)[0]
        lines.append(f"{key}={strong_password()}" if key in keys else line)
    return "\n".join(lines) + "\n"


def env_values(text: str) -> dict[str, str]:
    return dict(
        line.split("=", 1) for line in text.splitlines() if "=" in line and not line.startswith("#")
    )


def is_weak(value: str) -> bool:
    """Empty, or the `change-me` placeholders the examples once held."""
    return not value or value.startswith("change-me")


def weak_keys(text: str, keys: tuple[str, ...]) -> list[str]:
    """The keys among `keys` that are absent, empty or a placeholder."""
    values = env_values(text)
    return [key for key in keys if is_weak(values.get(key, ""))]


def write_missing(directory: Path) -> list[Path]:
    """Writes each *.env that does not exist yet from its example; returns those written."""
    written = []
    for example in sorted(directory.glob("*.env.example")):
        target = example.with_suffix("")
        if target.exists():
            continue
        target.write_text(fill(example.read_text(), GENERATED.get(target.name, ())))
        target.chmod(0o600)
        written.append(target)
    return written


def problems(directory: Path) -> list[str]:
    """What stops the secrets in `directory` from being deployed; empty when they can be."""
    found = []
    for example in sorted(directory.glob("*.env.example")):
        target = example.with_suffix("")
        if not target.exists():
            found.append(f"{target.name} is missing: run `make secrets`")
            continue
        for key in weak_keys(target.read_text(), GENERATED.get(target.name, ())):
            found.append(f"{target.name}: {key} is empty or a placeholder")
    return found


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m pipelines.cluster_secrets", description=__doc__
    )
    parser.add_argument("--dir", type=Path, default=SECRETS_DIR)
    parser.add_argument("--check", action="store_true", help="only check, write nothing")
    args = parser.parse_args(argv)
    if not args.check:
        for path in write_missing(args.dir):
            print(f"wrote {path}")
    found = problems(args.dir)
    for problem in found:
        print(problem, file=sys.stderr)
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
