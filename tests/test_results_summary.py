"""The summary's one typed definition: what the summarizer returns, the README documents and the view draws."""

from __future__ import annotations

import base64
import json
import re
import types
import typing
from pathlib import Path
from typing import Annotated, Any, get_args, get_origin, get_type_hints, is_typeddict

from airflow_provider_videoinfer.results.reader import summarize_result
from airflow_provider_videoinfer.results.summary import ModelSummary, ResultSummary
from airflow_provider_videoinfer.ui.render import DRAWN_KEYS, DRAWN_MODEL_KEYS

README = Path(__file__).resolve().parent.parent / "README.md"
START, END = "<!-- summary-keys:start -->", "<!-- summary-keys:end -->"
PNG_1X1 = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d49484452000000010000000108000000003a7e9b55"
        "0000000a49444154789c63600000000200015e2b3c6a0000000049454e44ae426082"
    )
).decode()


def _hints(typed_dict: Any) -> dict[str, tuple[Any, str]]:
    """Each key's type and documentation (the text of its ``Annotated``)."""
    hints = {}
    for key, hint in get_type_hints(typed_dict, include_extras=True).items():
        assert get_origin(hint) is Annotated, f"{typed_dict.__name__}.{key} has no documentation"
        kind, doc = get_args(hint)
        hints[key] = (kind, doc)
    return hints


def _optional(hint: Any) -> tuple[Any, bool]:
    """``(X, True)`` for ``X | None``, else ``(hint, False)``."""
    args = get_args(hint)
    if get_origin(hint) in (typing.Union, types.UnionType) and type(None) in args:
        (inner,) = [arg for arg in args if arg is not type(None)]
        return inner, True
    return hint, False


def _type_name(hint: Any) -> str:
    inner, optional = _optional(hint)
    if is_typeddict(inner):
        name = "object"
    elif get_origin(inner) is list:
        (item,) = get_args(inner)
        name = "list of objects" if is_typeddict(item) else f"list of {_type_name(item)}"
    elif get_origin(inner) is dict:
        _, value = get_args(inner)
        name = "object of objects" if is_typeddict(value) else f"object of {_type_name(value)}"
    else:
        name = inner.__name__
    return f"{name} or null" if optional else name


def _rows(typed_dict: Any, prefix: str = "") -> list[str]:
    rows = []
    for key, (hint, doc) in _hints(typed_dict).items():
        present = "always" if key in typed_dict.__required_keys__ else "optional"
        rows.append(f"| `{prefix}{key}` | {_type_name(hint)} | {present} | {doc} |")
        inner, _ = _optional(hint)
        if is_typeddict(inner):
            rows += _rows(inner, f"{prefix}{key}.")
        elif get_origin(inner) is list and is_typeddict(get_args(inner)[0]):
            rows += _rows(get_args(inner)[0], f"{prefix}{key}[].")
        elif get_origin(inner) is dict and is_typeddict(get_args(inner)[1]):
            rows += _rows(get_args(inner)[1], f"{prefix}{key}.<{'model_id' if key == 'models' else 'name'}>.")
    return rows


def summary_keys_table() -> str:
    """The README's table of the summary's keys, from :class:`ResultSummary`."""
    return "\n".join(["| key | type | present | meaning |", "| --- | --- | --- | --- |", *_rows(ResultSummary)])


def test_the_readme_documents_every_key_of_the_summary():
    text = README.read_text(encoding="utf-8")
    assert START in text and END in text, f"README.md lacks the {START} ... {END} markers"
    documented = text.split(START, 1)[1].split(END, 1)[0].strip()
    expected = summary_keys_table()
    assert documented == expected, (
        "README.md's table of the summary's keys differs from results/summary.py; put this between "
        f"the markers:\n{expected}"
    )


def _conforms(value: Any, hint: Any, where: str) -> None:
    """Assert that ``value`` has the shape ``hint`` (a type of the summary's definition) describes."""
    if get_origin(hint) is Annotated:
        hint = get_args(hint)[0]
    inner, optional = _optional(hint)
    if value is None:
        assert optional, f"{where} is null, which its type {hint} does not allow"
        return
    if is_typeddict(inner):
        assert isinstance(value, dict), where
        hints = get_type_hints(inner, include_extras=True)
        assert set(value) <= set(hints), f"{where} has keys outside {inner.__name__}: {set(value) - set(hints)}"
        assert inner.__required_keys__ <= set(value), f"{where} lacks {inner.__required_keys__ - set(value)}"
        for key, item in value.items():
            _conforms(item, hints[key], f"{where}.{key}")
    elif get_origin(inner) is list:
        assert isinstance(value, list), where
        for n, item in enumerate(value):
            _conforms(item, get_args(inner)[0], f"{where}[{n}]")
    elif get_origin(inner) is dict:
        assert isinstance(value, dict), where
        for key, item in value.items():
            assert isinstance(key, str), where
            _conforms(item, get_args(inner)[1], f"{where}.{key}")
    elif inner is float:
        assert isinstance(value, (int, float)) and not isinstance(value, bool), where
    else:
        assert isinstance(value, inner) and (inner is bool or not isinstance(value, bool)), f"{where}: {value!r}"


def test_a_summary_of_every_task_type_follows_the_definition(tmp_path):
    def box(name: str, **extra: Any) -> dict[str, Any]:
        return {"x": 1, "y": 2, "width": 3, "height": 4, "confidence": 0.5, "class": name, **extra}

    def frame(*predictions: Any) -> dict[str, Any]:
        return {"time": 0.01, "image": {"width": 8, "height": 6}, "predictions": list(predictions)}

    face = {"face": {"x": 5, "y": 5, "width": 4, "height": 4, "confidence": 0.9}, "yaw": 0.1, "pitch": -0.2}
    label = {"predictions": [{"class": "day", "confidence": 0.8}], "top": "day", "confidence": 0.8}
    mask = {"predictions": {"segmentation_mask": PNG_1X1, "class_map": {"0": "background", "1": "road"}}}
    models = {
        "cars": [frame(box("car"), box("bus")), None, frame(), frame(box("car"))],
        "blobs": [frame(box("blob", points=[{"x": 1, "y": 2}]))] * 4,
        "poses": [frame(box("person", keypoints=[{"x": 1, "y": 2}]))] * 4,
        "scene": [label, label, None, label],
        "road": [mask] * 4,
        "gaze": [{"predictions": [face, face]}, {"predictions": []}, None, {"predictions": [face]}],
        "clip": [[1.0, 0.0], [0.0, 1.0], [float("nan"), 1.0], [1.0, 0.0]],
        "odd": ["text", 3, None, {"what": "ever"}],
    }
    path = tmp_path / "result.json"
    path.write_text(json.dumps({"frame_offset": [0, 6, 12, 18], "time_offset": [0, 0.25, 0.5, 0.75], **models}))

    summary = summarize_result(path)

    _conforms(summary, ResultSummary, "summary")
    assert list(summary["models"]) == list(models)
    # Every optional key of a model's summary is written for some task type.
    written = {key for model in summary["models"].values() for key in model}
    assert written == set(get_type_hints(ModelSummary)), set(get_type_hints(ModelSummary)) - written
    json.dumps(summary, allow_nan=False)  # XCom: plain JSON


def test_the_view_draws_keys_of_the_definition():
    assert set(get_type_hints(ResultSummary)) == DRAWN_KEYS  # every top-level key has its place on the page
    assert set(get_type_hints(ModelSummary)) >= DRAWN_MODEL_KEYS  # the rest are listed as they come
    for key in DRAWN_KEYS | DRAWN_MODEL_KEYS:
        assert re.fullmatch(r"[a-z_]+", key)


def _summary_types(typed_dict: Any, found: dict[str, Any]) -> dict[str, Any]:
    """Every TypedDict the summary holds, by name, ``typed_dict`` included."""
    found[typed_dict.__name__] = typed_dict
    for hint, _ in _hints(typed_dict).values():
        inner, _ = _optional(hint)
        for candidate in (inner, *get_args(inner)):
            if is_typeddict(candidate) and candidate.__name__ not in found:
                _summary_types(candidate, found)
    return found


def test_every_key_the_view_reads_is_a_key_of_the_definition():
    """mypy checks the view's ``summary["key"]``, not its ``summary.get("key")``: this test does."""
    import ast
    import inspect
    from dataclasses import fields

    from airflow_provider_videoinfer.ui import app, render
    from videoinfer_contract.estimate import Estimate

    keys = {key for typed_dict in _summary_types(ResultSummary, {}).values() for key in get_type_hints(typed_dict)}
    keys |= {field.name for field in fields(Estimate)}  # the submit task's estimate, drawn beside the summary
    read = set()
    for module in (render, app):
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr == "get"
                and not (isinstance(node.func.value, ast.Name) and node.func.value.id == "app")  # routes
                and node.args
                and isinstance(node.args[0], ast.Constant)
                and isinstance(node.args[0].value, str)
            ):
                read.add(node.args[0].value)
    assert read, "no summary.get(...) found: the test no longer sees the view's reads"
    assert read <= keys, f"the view reads keys the summary does not define: {sorted(read - keys)}"
