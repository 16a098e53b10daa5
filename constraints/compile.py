"""Write the per-version constraints files in this folder (``airflow-<AF>-py<PY>.txt``).

Airflow publishes a constraints file per release (the ``constraints-<AF>`` tags of apache/airflow),
which this project cannot download here. Each file is therefore resolved by uv as Airflow's would
have been on the day of that release: ``uv pip compile --exclude-newer <a day or two after the
release>`` over ``apache-airflow==<AF>`` and everything this repository installs (the provider with
all its extras, the local packages' dependencies and :data:`TOOLS`), then corrected by :data:`FIXES`
where a later release of a dependency is known to be needed. The tools that pin exact versions
newer than an old release (ruff, mypy, sphinx) may be newer than the cut-off (:data:`NEWER_ALLOWED`).

Airflow 3.3.2 on Python 3.11 keeps the pins of the set that was proven first (``known_good``).

Run: ``python constraints/compile.py`` (needs network access to the package index; installs a
pinned uv into a scratch virtualenv) or ``python constraints/compile.py 3.1.8`` for one release.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import tomllib
import venv
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
UV_VERSION = "0.13.9"
# The patch releases resolved for (the ones this machine and CI run; soupsieve 4.1.2 needs 3.11.5).
PATCH_RELEASES = {"3.11": "3.11.7", "3.12": "3.12.1", "3.13": "3.13.0"}

# The repository's own distributions: installed editable from the work tree, never pinned.
LOCAL_PACKAGES = ("airflow-provider-videoinfer", "videoinfer-contract", "videoinfer-server")

# Installed by CI or the helpers' targets without being a dependency of a local package.
TOOLS = (
    # The Celery system test: Airflow's Celery provider, and celery below 5.7 (celery 5.7.0 breaks
    # apache-airflow-providers-celery 3.26.0), Redis as its broker.
    "apache-airflow-providers-celery",
    "celery<5.7",
    "redis",
    # Documentation and release: one Sphinx for every Python (9.1 needs Python 3.12).
    "sphinx==9.0.4",
    "furo==2025.12.19",
    "build",
    "twine",
)

# Exact pins that came out after the oldest releases, and what they need.
NEWER_ALLOWED = (
    *("ruff", "mypy", "librt", "ast-serialize", "mypy-extensions", "pathspec"),
    *("sphinx", "furo", "sphinx-basic-ng"),
)


@dataclass(frozen=True)
class Target:
    """One constraints file.

    :param airflow: the Airflow release.
    :param python: the Python minor version, e.g. ``"3.11"``.
    :param cutoff: packages uploaded after this day are not considered.
    :param fixes: pins that replace what the cut-off resolution would choose, each with its reason.
    :param known_good: an earlier constraints file whose pins are kept.
    """

    airflow: str
    python: str
    cutoff: str
    fixes: dict[str, str] = field(default_factory=dict)
    known_good: str | None = None

    @property
    def path(self) -> Path:
        return HERE / f"airflow-{self.airflow}-py{self.python}.txt"


FIXES_3_2 = {
    # Airflow 3.2.2 fails every task with newer ones: 'State' object has no attribute 'svcs_registry'.
    "starlette==1.0.1": "a newer starlette drops the request state Airflow 3.2.2 stores svcs_registry in",
    "svcs==25.1.0": "svcs 26 needs the newer starlette",
}

TARGETS = (
    Target("3.0.6", "3.11", cutoff="2025-08-31"),
    Target("3.1.8", "3.11", cutoff="2026-03-13"),
    Target("3.2.2", "3.11", cutoff="2026-05-31", fixes=FIXES_3_2),
    Target("3.3.2", "3.11", cutoff="2026-12-01", known_good="airflow-3.3.2-py3.11.txt"),
    Target("3.3.2", "3.12", cutoff="2026-12-01", known_good="airflow-3.3.2-py3.11.txt"),
    Target("3.3.2", "3.13", cutoff="2026-12-01", known_good="airflow-3.3.2-py3.11.txt"),
)


def local_requirements() -> list[str]:
    """The repository's distributions with all their extras, as editable requirements."""
    folders = [ROOT] + [ROOT / name for name in ("contract", "server") if (ROOT / name / "pyproject.toml").exists()]
    requirements = []
    for folder in folders:
        extras = tomllib.loads((folder / "pyproject.toml").read_text())["project"].get("optional-dependencies", {})
        requirements.append(f"-e {folder}[{','.join(extras)}]" if extras else f"-e {folder}")
    return requirements


def header(target: Target) -> str:
    lines = [
        f"# Constraints for apache-airflow=={target.airflow} on Python {target.python}: every package this",
        "# repository installs (the provider with all extras, its local packages' dependencies, the Celery",
        "# system test's celery and redis, Sphinx, build and twine), pinned. Written by constraints/compile.py:",
        f"# uv {UV_VERSION} `uv pip compile --python-version {PATCH_RELEASES[target.python]}"
        f" --exclude-newer {target.cutoff}`, which approximates",
        f"# Airflow's own constraints-{target.airflow} (not reachable from here) by the packages released by then;",
        f"# {', '.join(NEWER_ALLOWED)} may be newer (exact pins of this project).",
    ]
    if target.known_good:
        lines.append(f"# Keeps every pin of {target.known_good}: the set first proven (once constraints.txt).")
    for pin, reason in target.fixes.items():
        lines.append(f"# Fix: {pin}: {reason}.")
    lines.append("# The repository's own packages (" + ", ".join(LOCAL_PACKAGES) + ") are not pinned.")
    return "\n".join(lines) + "\n"


def compile_target(uv: Path, target: Target, scratch: Path) -> None:
    requirements = scratch / "requirements.in"
    requirements.write_text(
        "\n".join([f"apache-airflow=={target.airflow}", *local_requirements(), *TOOLS, *target.fixes]) + "\n"
    )
    command = [
        str(uv), "pip", "compile", str(requirements), "--quiet", "--no-annotate", "--no-header",
        "--python-version", PATCH_RELEASES[target.python], "--python-platform", "x86_64-manylinux_2_28",
        "--exclude-newer", target.cutoff,
        *(f"--exclude-newer-package={name}=2026-12-01" for name in NEWER_ALLOWED),
        *(f"--no-emit-package={name}" for name in LOCAL_PACKAGES),
    ]  # fmt: skip
    if target.known_good:
        command += ["--constraints", str(HERE / target.known_good)]
    result = subprocess.run(command, capture_output=True, text=True, cwd=ROOT)
    if result.returncode != 0:
        sys.exit(f"uv could not resolve {target.path.name}:\n{result.stderr}")
    pins = [line for line in result.stdout.splitlines() if line and not line.startswith(("#", "-e "))]
    target.path.write_text(header(target) + "\n".join(pins) + "\n")
    print(f"{target.path.name}: {len(pins)} pins")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("airflow", nargs="*", help="only these Airflow releases")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch_name:
        scratch = Path(scratch_name)
        venv.create(scratch / "venv", with_pip=True)
        subprocess.run([scratch / "venv/bin/pip", "install", "--quiet", f"uv=={UV_VERSION}"], check=True)
        for target in TARGETS:
            if not args.airflow or target.airflow in args.airflow:
                compile_target(scratch / "venv/bin/uv", target, scratch)


if __name__ == "__main__":
    main()
