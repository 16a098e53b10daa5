"""Sphinx configuration of the provider's documentation (``make docs`` builds it, warnings as errors)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
BUILD = Path(__file__).resolve().parent / "_build"

# autodoc imports the provider, which imports Airflow: give Airflow a throwaway home rather than
# letting it create ~/airflow on the machine that builds the docs.
os.environ.setdefault("AIRFLOW_HOME", str(BUILD / "airflow-home"))
os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")
sys.path.insert(0, str(ROOT))

from airflow_provider_videoinfer import __version__  # noqa: E402

project = "airflow-provider-videoinfer"
author = "The airflow-provider-videoinfer authors"
copyright = f"2026, {author}"  # noqa: A001 (Sphinx's name)
version = release = __version__

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.autosummary",
    "sphinx.ext.viewcode",
]
templates_path = ["_templates"]
exclude_patterns = ["_build", "Thumbs.db", ".DS_Store"]

# The API reference: one page per module, generated from the docstrings at build time (into
# api/_generated, which is not committed).
autosummary_generate = True
autosummary_ignore_module_all = False
autodoc_member_order = "bysource"
# A module documents what it defines; names it re-exports (its __all__) are documented where they
# are defined, once.
autodoc_default_options = {"ignore-module-all": True}
autodoc_typehints = "description"
autodoc_typehints_description_target = "documented_params"
autodoc_class_signature = "separated"
autodoc_preserve_defaults = True

html_theme = "furo"
html_title = f"Video Inference provider {release}"
html_logo = "integration-logos/videoinfer.svg"
html_favicon = "integration-logos/videoinfer.svg"
html_theme_options = {
    "source_repository": "https://github.com/videoinfer/airflow-provider-videoinfer/",
    "source_branch": "main",
    "source_directory": "docs/",
}
