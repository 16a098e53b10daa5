"""Check the built archives (``make dist``): both hold LICENSE and NOTICE, the sdist holds what
its tests need, the README shows on a package index, and a subset of the sdist's own tests passes
when run from the unpacked archive.

Usage: ``python scripts/check_dist.py DIST_DIR [TEST ...]`` (the tests are paths or node ids
inside the sdist; none: only the contents are checked).
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tarfile
import tempfile
import zipfile
from pathlib import Path

LEGAL = ("LICENSE", "NOTICE")
#: The packages the sdist's tests must import from the unpacked sdist.
PACKAGES = ("airflow_provider_videoinfer", "videoinfer_contract", "videoinfer_server")
#: Files and folders whose absence would stop the sdist's tests (or its docs) from running.
SDIST_NEEDS = (
    "pyproject.toml",
    "CHANGELOG.rst",
    "tests/conftest.py",
    "tests/helpers.py",
    "tests/dags/",
    "tests/server/",
    "tests/system/",
    "tests/browser/",
    "example_dags/",
    "contract/pyproject.toml",
    "contract/videoinfer_contract/",
    "server/pyproject.toml",
    "server/videoinfer_server/",
    "docs/conf.py",
    "docs/results-view.png",
)


def fail(message: str) -> None:
    sys.exit(f"check_dist: {message}")


def one(dist: Path, pattern: str) -> Path:
    found = sorted(dist.glob(pattern))
    if len(found) != 1:
        fail(f"expected one {pattern} in {dist}, found {[p.name for p in found]}: run `make dist` from a clean dist/.")
    return found[0]


def source_version() -> str:
    """The one source of the version: ``__version__`` in the package's ``__init__.py``."""
    source = (Path(__file__).resolve().parent.parent / "airflow_provider_videoinfer" / "__init__.py").read_text()
    found = re.search(r'^__version__ = "([^"]+)"$', source, re.MULTILINE)
    if found is None:
        fail("airflow_provider_videoinfer/__init__.py has no __version__ line.")
    return found.group(1)  # type: ignore[union-attr]


def check_wheel(wheel: Path) -> None:
    archive = zipfile.ZipFile(wheel)
    names = archive.namelist()
    for name in LEGAL:
        if not any(n.endswith(f".dist-info/licenses/{name}") for n in names):
            fail(f"{wheel.name} lacks {name}: list it in [project] license-files of pyproject.toml.")
    (metadata,) = [n for n in names if n.endswith(".dist-info/METADATA")]
    version = re.search(r"^Version: (.+)$", archive.read(metadata).decode(), re.MULTILINE)
    if version is None or version.group(1) != source_version():
        fail(f"{wheel.name} says version {version and version.group(1)}, __init__.py {source_version()}.")
    print(f"{wheel.name}: {', '.join(LEGAL)} present; version {source_version()} as in __init__.py; {len(names)} files")


def check_sdist(sdist: Path) -> tuple[str, str]:
    with tarfile.open(sdist) as archive:
        names = archive.getnames()
        top = names[0].split("/", 1)[0]
        inside = {name.split("/", 1)[1] for name in names if "/" in name}
        for name in LEGAL + SDIST_NEEDS:
            wanted = name.rstrip("/")
            if wanted not in inside and not any(n.startswith(name) for n in inside):
                fail(f"{sdist.name} lacks {name}: add it to MANIFEST.in.")
        readme = archive.extractfile(f"{top}/README.md").read().decode()  # type: ignore[union-attr]
    relative = [src for src in re.findall(r"!\[[^\]]*\]\(([^)\s]+)", readme) if not src.startswith("https://")]
    if relative:
        fail(f"README.md shows images by relative links {relative}, broken on a package index: use absolute URLs.")
    print(f"{sdist.name}: {', '.join(LEGAL)} and the tests' files present; README images absolute")
    return top, readme


def run_tests(sdist: Path, top: str, tests: list[str]) -> None:
    with tempfile.TemporaryDirectory(prefix="videoinfer-sdist-") as temp:
        with tarfile.open(sdist) as archive:
            archive.extractall(temp, filter="data")
        root = Path(temp) / top
        # `python -m pytest` puts the unpacked folder first on sys.path, PYTHONPATH its contract and
        # server: the packages tested are the sdist's, not the ones installed from the checkout.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(str(root / folder) for folder in ("contract", "server"))}
        command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *tests]
        print(f"In the unpacked sdist ({root}): {' '.join(command[1:])}", flush=True)
        for package in PACKAGES:
            check = f"import {package}; print({package}.__file__)"
            where = subprocess.run(
                [sys.executable, "-c", check], cwd=root, env=env, capture_output=True, text=True, check=True
            )
            if not where.stdout.startswith(str(root)):
                fail(f"the tests would import {package} from {where.stdout.strip()}, not from the sdist.")
        if subprocess.run(command, cwd=root, env=env).returncode != 0:
            fail("the sdist's tests failed (see above).")


def main(argv: list[str]) -> None:
    if not argv:
        fail("usage: python scripts/check_dist.py DIST_DIR [TEST ...]")
    dist = Path(argv[0])
    check_wheel(one(dist, "*.whl"))
    top, _ = check_sdist(one(dist, "*.tar.gz"))
    if argv[1:]:
        run_tests(one(dist, "*.tar.gz"), top, argv[1:])


if __name__ == "__main__":
    main(sys.argv[1:])
