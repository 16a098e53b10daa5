"""The results view's page: a results summary drawn as HTML with inline SVG charts.

Pure functions of the summary: the XCom value of ``VideoInferResultsOperator`` (typed by
:class:`~airflow_provider_videoinfer.results.summary.ResultSummary`, drawn by :func:`results_page`)
or of ``VideoInferBatchResultsOperator`` (a
:class:`~airflow_provider_videoinfer.operators.batch_results.BatchResultsSummary`, drawn by
:func:`batch_results_page`), both in the same frame (:func:`results_frame`), so the page needs no script,
no CDN and no second request except the contact sheet's image. Every text shown is escaped, and any
URL loses its query string, so neither a key nor a signed URL reaches the page. The XCom value is
read defensively (it may come from another version of the provider): keys the page does not draw
itself are shown as figures, ranges, small charts or JSON, and a value of an unexpected type is
shown as it is.
"""

from __future__ import annotations

import html
import json
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, cast

from airflow_provider_videoinfer.results.summary import ModelSummary, ResultSummary

if TYPE_CHECKING:
    from airflow_provider_videoinfer.operators.batch_results import BatchResultsSummary

MAX_SERIES = 8
MAX_BUSIEST = 5
CHART_WIDTH, CHART_HEIGHT = 720, 220
COLOURS = ("#4e79a7", "#f28e2b", "#e15759", "#76b7b2", "#59a14f", "#edc948", "#b07aa1", "#ff9da7")

# The model figures shown in the table at the top of a model's section, with their labels.
_FIGURES: tuple[
    tuple[Literal["frames", "frames_with_predictions", "predictions", "null_frames", "unknown_frames"], str], ...
] = (
    ("frames", "frames"),
    ("frames_with_predictions", "frames with predictions"),
    ("predictions", "predictions"),
    ("null_frames", "frames without a result"),
    ("unknown_frames", "frames of an unknown shape"),
)
#: Keys of a model's summary (:class:`ModelSummary`) that the page draws itself; every other key
#: is shown as it comes, under "More".
DRAWN_MODEL_KEYS = frozenset(
    {key for key, _ in _FIGURES}
    | {"inference_type", "class_counts", "classes_truncated", "classes", "max_objects", "timeline"}
)
#: Keys of the summary (:class:`ResultSummary`) that the page draws itself.
DRAWN_KEYS = frozenset({"source", "frames", "last_time_offset", "models", "rows", "contact_sheet"})
_URL_QUERY = re.compile(r"\b((?:https?|s3|gs|gcs|az|abfs)://[^\s?#\"'<>]*)[?#][^\s\"'<>]*", re.IGNORECASE)
_SECRET_PARAM = re.compile(r"(api_key|token|signature|x-goog-[a-z-]+|sig|key)=[^&\s\"'<>]+", re.IGNORECASE)

STYLE = """
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:16px;color:#1a202c;background:#fff}
h1{font-size:20px;margin:0 0 4px}
h2{font-size:17px;margin:24px 0 6px;border-bottom:1px solid #e2e8f0;padding-bottom:4px}
h3{font-size:14px;margin:14px 0 4px;color:#4a5568}
.muted{color:#718096}
table{border-collapse:collapse;font-size:13px;margin:4px 0}
td,th{padding:3px 10px 3px 0;text-align:left;vertical-align:top}
th{color:#4a5568;font-weight:600}
code{font-size:12px;background:#f7fafc;padding:1px 4px;border-radius:3px;word-break:break-all}
svg{display:block;max-width:100%;height:auto}
svg text{font-size:11px;fill:#4a5568}
.sheet{max-width:100%;border:1px solid #e2e8f0}
.note{background:#fffaf0;border:1px solid #fbd38d;padding:8px;border-radius:4px}
"""


def finite(value: Any) -> bool:
    """True for a real, finite number (summaries may carry NaN from a bad frame)."""
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def scrub(value: Any) -> str:
    """Text safe to show: URLs without their query string, ``key=value`` secrets masked."""
    text = value if isinstance(value, str) else json.dumps(value, default=str)
    text = _URL_QUERY.sub(r"\1?…", text)
    return _SECRET_PARAM.sub(r"\1=***", text)


def _e(value: Any) -> str:
    return html.escape(scrub(value))


def _number(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return _e(value)
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 1000 else f"{value:,.0f}"
    return f"{value:,}"


def _seconds(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return "?"
    minutes, seconds = divmod(float(value), 60)
    return f"{int(minutes)}:{seconds:05.2f}" if minutes else f"{seconds:.2f} s"


def page(title: str, body: str) -> str:
    """A whole HTML document around ``body``."""
    return (
        f'<!doctype html><html lang="en"><head><meta charset="utf-8"><title>{_e(title)}</title>'
        f"<style>{STYLE}</style></head><body>{body}</body></html>"
    )


def message_page(title: str, text: str) -> str:
    """A page that only says something, e.g. that a task is not a results task."""
    return page(title, f"<h1>{_e(title)}</h1><p class='note'>{_e(text)}</p>")


def _table(rows: Sequence[tuple[str, str]], header: tuple[str, str] | None = None) -> str:
    head = f"<tr><th>{_e(header[0])}</th><th>{_e(header[1])}</th></tr>" if header else ""
    cells = "".join(f"<tr><th>{_e(name)}</th><td>{value}</td></tr>" for name, value in rows)
    return f"<table>{head}{cells}</table>"


def bar_chart(counts: Mapping[str, Any], label: str) -> str:
    """Horizontal bars, one per class, largest first."""
    items = [(str(k), float(v)) for k, v in counts.items() if finite(v)]
    items.sort(key=lambda item: -item[1])
    items = items[:20]
    if not items:
        return "<p class='muted'>No classes.</p>"
    top = max(value for _, value in items) or 1.0
    height = 22 * len(items) + 6
    bars = []
    for n, (name, value) in enumerate(items):
        width = max(1.0, 420 * value / top)
        y = 4 + 22 * n
        bars.append(
            f'<text x="150" y="{y + 14}" text-anchor="end">{_e(name[:24])}</text>'
            f'<rect x="158" y="{y + 2}" width="{width:.1f}" height="16" fill="{COLOURS[n % len(COLOURS)]}"/>'
            f'<text x="{164 + width:.1f}" y="{y + 14}">{_number(value)}</text>'
        )
    return (
        f'<svg class="bars" role="img" aria-label="{_e(label)}" viewBox="0 0 {CHART_WIDTH} {height}" '
        f'width="{CHART_WIDTH}" height="{height}">{"".join(bars)}</svg>'
    )


def line_chart(series: Mapping[str, Sequence[tuple[float, float]]], label: str, x_label: str = "seconds") -> str:
    """Lines over time, one per series, with axes, ticks and a legend."""
    series = {name: points for name, points in list(series.items())[:MAX_SERIES] if points}
    if not series:
        return "<p class='muted'>Nothing to chart.</p>"
    xs = [x for points in series.values() for x, _ in points]
    ys = [y for points in series.values() for _, y in points]
    x0, x1 = min(xs), max(xs)
    y0, y1 = min(0.0, min(ys)), max(ys)
    x1 = x1 if x1 > x0 else x0 + 1
    y1 = y1 if y1 > y0 else y0 + 1
    left, right, top, bottom = 44, CHART_WIDTH - 10, 10, CHART_HEIGHT - 26

    def px(x: float) -> float:
        return left + (x - x0) / (x1 - x0) * (right - left)

    def py(y: float) -> float:
        return bottom - (y - y0) / (y1 - y0) * (bottom - top)

    parts = [
        f'<line x1="{left}" y1="{bottom}" x2="{right}" y2="{bottom}" stroke="#a0aec0"/>',
        f'<line x1="{left}" y1="{top}" x2="{left}" y2="{bottom}" stroke="#a0aec0"/>',
    ]
    for n in range(5):
        x = x0 + (x1 - x0) * n / 4
        y = y0 + (y1 - y0) * n / 4
        parts.append(f'<text x="{px(x):.1f}" y="{bottom + 14}" text-anchor="middle">{_number(round(x, 2))}</text>')
        parts.append(f'<text x="{left - 4}" y="{py(y) + 4:.1f}" text-anchor="end">{_number(round(y, 2))}</text>')
    parts.append(f'<text x="{right}" y="{CHART_HEIGHT - 2}" text-anchor="end">{_e(x_label)}</text>')
    legend = []
    for n, (name, points) in enumerate(series.items()):
        colour = COLOURS[n % len(COLOURS)]
        path = " ".join(f"{px(x):.1f},{py(y):.1f}" for x, y in points)
        if len(points) == 1:
            x, y = points[0]
            parts.append(f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="3" fill="{colour}"/>')
        parts.append(f'<polyline points="{path}" fill="none" stroke="{colour}" stroke-width="2"/>')
        legend.append(f'<span style="color:{colour}">■</span> {_e(name)}')
    svg = (
        f'<svg class="timeline" role="img" aria-label="{_e(label)}" viewBox="0 0 {CHART_WIDTH} {CHART_HEIGHT}" '
        f'width="{CHART_WIDTH}" height="{CHART_HEIGHT}">{"".join(parts)}</svg>'
    )
    return svg + f"<div class='muted'>{' &nbsp; '.join(legend)}</div>"


def _timeline_series(timeline: Mapping[str, Any]) -> dict[str, list[tuple[float, float]]]:
    """Per class, a step line: ``(time, count)`` at each bucket's start and end; absent counts 0."""
    given: Any = timeline.get("bucket_seconds")
    width = float(given) if finite(given) and given > 0 else 1.0
    buckets = [b for b in timeline.get("buckets") or () if isinstance(b, Mapping)]
    totals: dict[str, float] = {}
    for bucket in buckets:
        for name, count in (bucket.get("counts") or {}).items():
            if isinstance(count, (int, float)):
                totals[str(name)] = totals.get(str(name), 0) + count
    names = sorted(totals, key=lambda name: -totals[name])[:MAX_SERIES]
    series: dict[str, list[tuple[float, float]]] = {name: [] for name in names}
    for bucket in buckets:
        start = bucket.get("start")
        if not isinstance(start, (int, float)):
            continue
        counts = bucket.get("counts") or {}
        for name in names:
            value = counts.get(name, 0)
            value = float(value) if finite(value) else 0.0
            series[name] += [(float(start), value), (float(start) + width, value)]
    return series


def _busiest(timeline: Mapping[str, Any]) -> str:
    width = timeline.get("bucket_seconds") or 1
    buckets = [b for b in timeline.get("buckets") or () if isinstance(b, Mapping) and b.get("counts")]

    def total(bucket: Mapping[str, Any]) -> float:
        return sum(v for v in bucket["counts"].values() if isinstance(v, (int, float)))

    ranked = sorted(buckets, key=lambda b: (-total(b), b.get("start", 0)))[:MAX_BUSIEST]
    if not ranked:
        return ""
    rows = "".join(
        f"<tr><td>{_seconds(b.get('start'))} – {_seconds((b.get('start') or 0) + width)}</td>"
        f"<td>{_e(', '.join(f'{k} {_number(v)}' for k, v in b['counts'].items()))}</td></tr>"
        for b in ranked
    )
    return f"<h3>Busiest moments</h3><table><tr><th>when</th><th>counts</th></tr>{rows}</table>"


def _numeric_series(value: Any) -> dict[str, list[tuple[float, float]]] | None:
    """A list of numbers, or of dicts with a time key and numbers, as chart series; else None."""
    if not isinstance(value, list) or len(value) < 2:
        return None
    if all(finite(v) for v in value):
        return {"value": [(float(n), float(v)) for n, v in enumerate(value)]}
    if not all(isinstance(v, Mapping) for v in value):
        return None
    series: dict[str, list[tuple[float, float]]] = {}
    for n, item in enumerate(value):
        x = next((item[k] for k in ("start", "time_offset", "time", "second") if k in item), n)
        if not finite(x):
            return None
        for name, y in item.items():
            if name not in ("start", "time_offset", "time", "second", "frame_offset", "frame_index") and finite(y):
                series.setdefault(str(name), []).append((float(x), float(y)))
    return series or None


def other_value(name: str, value: Any) -> str:
    """Show a summary value the page has no special drawing for."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return _number(value) if not isinstance(value, str) else _e(value)
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        return f"{_number(value[0])} … {_number(value[1])}"
    if isinstance(value, Mapping):
        if {"min", "max"} <= set(value) and all(isinstance(value[k], (int, float)) for k in ("min", "max")):
            rest = {k: v for k, v in value.items() if k not in ("min", "max")}
            extra = f" ({other_value(name, rest)})" if rest else ""
            return f"{_number(value['min'])} … {_number(value['max'])}{extra}"
        if isinstance(value.get("buckets"), list) and (steps := _timeline_series(value)):
            return line_chart(steps, name)
        if len(value) <= 12 and all(not isinstance(v, (list, Mapping)) for v in value.values()):
            return _table([(str(k), other_value(str(k), v)) for k, v in value.items()])
    series = _numeric_series(value)
    if series:
        return line_chart(series, name, "seconds" if isinstance(value[0], Mapping) else "index")
    text = json.dumps(value, default=str)
    return f"<code>{_e(text[:600] + ('…' if len(text) > 600 else ''))}</code>"


def _max_objects(value: Any) -> str:
    if not isinstance(value, Mapping):
        return other_value("max_objects", value)
    when = _seconds(value.get("time_offset"))
    return f"{_number(value.get('count'))} at {when} (frame {_e(value.get('frame_offset'))})"


def _kind_note(inference_type: Any) -> str:
    notes = {
        "clip-embed-image": ("Embeddings: a vector per frame. How much consecutive frames change shows scene changes."),
        "gaze-detection": "Gaze: faces per frame, and where they look (yaw and pitch, in radians).",
        "classification": "Classification: the top class of each frame.",
        "semantic-segmentation": "Semantic segmentation: a class per pixel.",
    }
    note = notes.get(inference_type) if isinstance(inference_type, str) else None
    return f"<p class='muted'>{_e(note)}</p>" if note else ""


def model_section(model_id: str, value: ModelSummary | Any) -> str:
    """One model's figures, class counts, timeline and busiest moments, then any other keys."""
    if not isinstance(value, Mapping):
        return f"<h2>{_e(model_id)}</h2>{other_value(model_id, value)}"
    summary = cast(ModelSummary, value)
    kind = summary.get("inference_type")
    parts = [f"<h2>{_e(model_id)} <span class='muted'>({_e(kind or 'unknown type')})</span></h2>", _kind_note(kind)]
    figures = [(label, _number(summary[key])) for key, label in _FIGURES if key in summary]
    if "max_objects" in summary:
        figures.append(("most at once", _max_objects(summary["max_objects"])))
    parts.append(_table(figures))
    counts = summary.get("class_counts")
    if isinstance(counts, Mapping) and counts:
        what = "frames per top class" if kind == "classification" else "detections per class"
        truncated = " (largest only)" if summary.get("classes_truncated") else ""
        parts.append(f"<h3>Counts: {_e(what)}{_e(truncated)}</h3>{bar_chart(counts, f'{model_id} class counts')}")
    classes = summary.get("classes")
    if isinstance(classes, list):
        parts.append(f"<h3>Classes</h3><p>{_e(', '.join(map(str, classes)))}</p>")
    timeline = summary.get("timeline")
    if isinstance(timeline, Mapping):
        series = _timeline_series(timeline)
        width = timeline.get("bucket_seconds") or 1
        parts.append(
            f"<h3>Timeline: {_e(timeline.get('counts') or 'counts')}, per {_e(width)} s</h3>"
            + line_chart(series, f"{model_id} timeline")
            + ("" if kind == "classification" else _busiest(timeline))
        )
    others = [(key, other) for key, other in summary.items() if key not in DRAWN_MODEL_KEYS]
    if others:
        parts.append("<h3>More</h3>" + _table([(key, other_value(key, other)) for key, other in others]))
    return "".join(parts)


def _files(summary: ResultSummary) -> list[tuple[str, str]]:
    files = []
    if summary.get("source"):
        files.append(("result file", f"<code>{_e(summary['source'])}</code>"))
    rows = summary.get("rows")
    if isinstance(rows, Mapping) and rows.get("destination"):
        files.append(
            (
                f"rows ({_e(rows.get('format') or '?')})",
                f"<code>{_e(rows['destination'])}</code> · {_number(rows.get('count'))} rows",
            )
        )
    sheet = summary.get("contact_sheet")
    if isinstance(sheet, Mapping) and sheet.get("location"):
        files.append(("contact sheet", f"<code>{_e(sheet['location'])}</code>"))
    return files


def billed_rows(summary: ResultSummary, estimate: Mapping[str, Any] | None) -> list[tuple[str, str]]:
    """The frames billed: what the submit task estimated before the job (XCom ``estimate``), beside what
    the result file holds (sampled frames × models); no row without an estimate."""
    if not isinstance(estimate, Mapping) or not isinstance(estimate.get("frames"), int):
        return []
    models = summary.get("models")
    held = [m.get("frames") for m in models.values()] if isinstance(models, Mapping) else []
    counts = [count for count in held if isinstance(count, int)]
    about = "" if estimate.get("exact") else "about "
    rows = [
        (
            "estimated before the job",
            f"{about}{_number(estimate.get('sampled_frames'))} sampled frames × {_number(estimate.get('models'))} "
            f"models = {about}{_number(estimate['frames'])} frames billed",
        )
    ]
    if counts:
        rows.append(
            (
                "in the result file",
                f"{_number(summary.get('frames'))} sampled frames × {len(counts)} models = "
                f"{_number(sum(counts))} frames billed",
            )
        )
    return rows


def results_page(
    title: str, summary: ResultSummary, sheet_url: str | None, estimate: Mapping[str, Any] | None = None
) -> str:
    """The view of one results task: files kept, contact sheet, then one section per model.

    :param title: names the task instance, e.g. ``dag / run / task``.
    :param summary: the task's XCom summary.
    :param sheet_url: where the page loads the contact sheet from; None when there is none.
    :param estimate: the run's job estimate (the submit task's XCom ``estimate``), shown beside the
        frames the result holds; None when there is none.
    """
    duration = summary.get("last_time_offset")
    parts = [
        _table(
            [
                ("frames", _number(summary.get("frames"))),
                ("last frame at", _seconds(duration)),
                *billed_rows(summary, estimate),
                *_files(summary),
            ]
        ),
    ]
    if sheet_url:
        parts.append(
            "<h2>Contact sheet</h2><p class='muted'>The busiest frame of each part of the video, drawn.</p>"
            f'<img class="sheet" alt="contact sheet" src="{html.escape(sheet_url)}">'
        )
    models = summary.get("models")
    if isinstance(models, Mapping) and models:
        parts.extend(model_section(str(model_id), model) for model_id, model in models.items())
    else:
        parts.append("<p class='note'>The summary lists no model.</p>")
    others = [(key, value) for key, value in summary.items() if key not in DRAWN_KEYS]
    return results_frame("Video inference results", title, parts, others)


def batch_results_page(title: str, summary: BatchResultsSummary, value: Mapping[str, Any] | None = None) -> str:
    """The view of one batch results task: the job, where its results were kept, their figures, and the
    detections per class (bars, then a table of every class).

    :param title: names the task instance, e.g. ``dag / run / task``.
    :param summary: the task's XCom summary.
    :param value: the XCom value the summary was read from; its keys the summary does not define (a
        newer provider's) are shown under "More". None shows none.
    """
    counts: Mapping[str, Any] = summary.detections if isinstance(summary.detections, Mapping) else {}
    ranked = sorted(counts.items(), key=lambda item: (-item[1] if finite(item[1]) else 0, str(item[0])))
    figures = [
        ("job", f"<code>{_e(summary.job_id)}</code>"),
        ("kept in", f"<code>{_e(summary.destination)}</code>"),
        ("videos", _number(summary.videos)),
        ("rows", _number(summary.rows)),
        ("files", _number(summary.files)),
        ("detections", _number(sum(count for _, count in ranked if finite(count)))),
    ]
    parts = [_table(figures), "<h2>Detections per class</h2>"]
    if ranked:
        parts.append(bar_chart(counts, "detections per class"))
        parts.append(_table([(str(name), _number(count)) for name, count in ranked], header=("class", "detections")))
    else:
        parts.append("<p class='note'>No Workflow output of this job held detections.</p>")
    known = summary.to_dict()
    others = [(key, other) for key, other in (value or {}).items() if key not in known]
    return results_frame("Batch Processing results", title, parts, others)


def results_frame(heading: str, title: str, sections: Sequence[str], others: Sequence[tuple[str, Any]] = ()) -> str:
    """The page of a results task, whatever its summary: heading, task, sections, then the summary's keys
    no section draws (under "More").

    :param heading: what the page shows, e.g. ``Video inference results``.
    :param title: names the task instance.
    :param sections: HTML drawn from the summary.
    :param others: ``(key, value)`` of the summary that no section draws; empty shows no "More".
    """
    more = ["<h2>More</h2>" + _table([(key, other_value(key, value)) for key, value in others])] if others else []
    body = f"<h1>{_e(heading)}</h1><p class='muted'>{_e(title)}</p>" + "".join([*sections, *more])
    return page(f"{heading}: {title}", body)
