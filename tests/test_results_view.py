"""The results view's page, drawn from summaries: known keys, keys it does not know, and no secret."""

from __future__ import annotations

import json
import re

from airflow_provider_videoinfer.operators.batch_results import summarise_folder
from airflow_provider_videoinfer.ui.app import _as_batch_summary, _as_summary
from airflow_provider_videoinfer.ui.render import batch_results_page, message_page, results_page, scrub

DETECTION = {
    "inference_type": "object-detection",
    "frames": 30,
    "null_frames": 1,
    "unknown_frames": 0,
    "frames_with_predictions": 28,
    "class_counts": {"car": 40, "person": 12},
    "classes_truncated": False,
    "predictions": 52,
    "max_objects": {"count": 5, "frame_index": 9, "frame_offset": 54, "time_offset": 2.25},
    "timeline": {
        "bucket_seconds": 2,
        "counts": "most objects of each class in one frame",
        "buckets": [
            {"start": 0, "counts": {"car": 2}},
            {"start": 2, "counts": {"car": 4, "person": 1}},
            {"start": 4, "counts": {"person": 3}},
        ],
    },
}


def summary(**models: dict) -> dict:
    return {"source": "/data/run/result.json", "frames": 30, "last_time_offset": 5.8, "models": models, "rows": None}


def test_counts_timeline_and_busiest_moments():
    page = results_page("d / r / t", summary(detector=DETECTION), sheet_url="/videoinfer/contact-sheet/d/r/t")
    assert ">40</text>" in page and ">12</text>" in page  # a bar per class, labelled with its count
    timeline = re.search(r'<svg class="timeline".*?</svg>', page, re.S).group(0)
    assert timeline.count("<polyline") == 2  # car and person
    busiest = page.split("Busiest moments", 1)[1]
    assert busiest.index("2.00 s – 4.00 s") < busiest.index("0.00 s – 2.00 s")  # 5 objects before 2
    assert "5 at 2.25 s (frame 54)" in page
    assert '<img class="sheet"' in page and "/data/run/result.json" in page


def test_embeddings_and_gaze_and_keys_the_page_does_not_know():
    embedding = {
        "inference_type": "clip-embed-image",
        "frames": 12,
        "frames_with_predictions": 12,
        "dimensions": 512,
        "change": [{"time_offset": t / 2, "distance": d} for t, d in enumerate([0.01, 0.02, 0.6, 0.03])],
        "scene_changes": [{"time_offset": 1.0, "distance": 0.6}],
    }
    gaze = {
        "inference_type": "gaze-detection",
        "frames": 12,
        "class_counts": {"face": 9},
        "faces_per_frame": {"min": 0, "max": 2, "mean": 0.75},
        "yaw_range": [-0.42, 0.31],
        "pitch": {"min": -0.1, "max": 0.2},
        "nested": {"deep": {"deeper": [1, {"x": "y"}]}},
    }
    page = results_page("t", {**summary(clip=embedding, gaze=gaze), "new_top_level_key": 7}, None)
    assert "scene changes" in page.lower()
    assert "512" in page
    assert page.count('<svg class="timeline"') == 1  # the change curve; the one scene change is listed
    assert "&quot;distance&quot;: 0.6" in page
    assert "-0.42 … 0.31" in page and "-0.1 … 0.2" in page and "0 … 2" in page
    assert "deeper" in page and "new_top_level_key" in page
    assert "<img" not in page  # no contact sheet, no broken image


def test_strange_values_do_not_break_the_page():
    weird = {
        "inference_type": None,
        "class_counts": {"<script>alert(1)</script>": 3, "nan": float("nan")},
        "timeline": {"buckets": [{"start": "x"}, "junk", {"start": 1, "counts": {"a": float("inf")}}]},
        "max_objects": "many",
    }
    page = results_page("<b>t</b>", {"models": {"m": weird, "n": "not a dict"}}, None)
    assert "<script>" not in page and "&lt;script&gt;" in page and "<b>t</b>" not in page
    svg = "".join(re.findall(r"<svg.*?</svg>", page, re.S)).lower()
    assert svg and "nan" not in svg.replace(">nan<", "") and "inf" not in svg  # never an SVG number
    assert "The summary lists no model" in results_page("t", {"models": {}}, None)


def test_no_key_and_no_signed_url_reaches_the_page():
    signed = "https://storage.googleapis.com/bucket/out/job.json?X-Goog-Algorithm=x&X-Goog-Expires=900&X-Goog-Signature=abc123"
    secret = {
        "inference_type": "object-detection",
        "output_url": signed,
        "note": "called http://127.0.0.1:9050/videoinfer/?api_key=vi-secret-key&job_id=1",
    }
    data = {**summary(m=secret), "source": "s3://bucket/results/run.json?token=zzz"}
    page = results_page("t", data, None)
    assert "abc123" not in page and "vi-secret-key" not in page and "zzz" not in page
    assert "X-Goog" not in page and "storage.googleapis.com/bucket/out/job.json" in page
    assert scrub("see api_key=k1 and key=k2") == "see api_key=*** and key=***"


def test_message_page_escapes():
    assert "&lt;i&gt;" in message_page("<i>", "<i>")


SIGNED = "https://storage.googleapis.com/out/job.jsonl?X-Goog-Algorithm=x&X-Goog-Signature=abc123"


def _batch_summary(tmp_path) -> dict:
    """A batch results operator's XCom value, summarised from a kept copy as the operator does."""
    kept = tmp_path / "job-7"
    (kept / "results").mkdir(parents=True)
    boxes = [{"class": "car", "x": 1, "y": 2}] * 3 + [{"class": "person", "x": 5, "y": 6}]
    rows = [
        {"video": "a.mp4", "frame_index": 0, "time_offset": 0.0, "detections": {"predictions": boxes}},
        {"video": "a.mp4", "frame_index": 5, "time_offset": 0.5, "detections": json.dumps({"predictions": boxes[:1]})},
        {"video": "b.mp4", "frame_index": 0, "time_offset": 0.0, "note": SIGNED},
    ]
    (kept / "results" / "a.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    (kept / "results" / "b.csv").write_text("video,frame_index,time_offset\nc.mp4,0,0.0\n")
    return summarise_folder(kept, "job-7", "s3://aws_default@bucket/results/job-7?token=zzz").to_dict()


def test_a_batch_summary_renders_its_figures_and_counts_per_class(tmp_path):
    value = {**_batch_summary(tmp_path), "signed_url": SIGNED}  # a key a newer provider may add
    assert value["detections"] == {"car": 4, "person": 1} and (value["videos"], value["rows"]) == (3, 4)
    summary = _as_batch_summary(value)
    assert summary is not None and _as_summary(value) is None
    page = batch_results_page("d / r / results", summary, value)
    assert "<h1>Batch Processing results</h1>" in page and "d / r / results" in page
    for figure in ("<th>job</th><td><code>job-7</code>", "<th>videos</th><td>3</td>", "<th>rows</th><td>4</td>"):
        assert figure in page
    assert "<th>files</th><td>2</td>" in page and "<th>detections</th><td>5</td>" in page
    assert "s3://aws_default@bucket/results/job-7" in page
    bars = re.search(r'<svg class="bars".*?</svg>', page, re.S).group(0)
    assert ">4</text>" in bars and ">1</text>" in bars  # a bar per class, labelled with its count
    table = page.split("<th>class</th><th>detections</th></tr>", 1)[1]
    assert table.index("<th>car</th><td>4</td>") < table.index("<th>person</th><td>1</td>")  # largest first
    assert "signed_url" in page  # shown under "More", without its query
    assert "abc123" not in page and "X-Goog" not in page and "zzz" not in page
    assert "<img" not in page and "Video inference results" not in page


def test_a_batch_summary_without_detections_and_values_that_are_not_one(tmp_path):
    empty = _as_batch_summary({"job_id": "j", "destination": "/kept/j", "rows": 3, "detections": {}})
    assert empty is not None
    assert "No Workflow output of this job held detections" in batch_results_page("t", empty)
    assert _as_batch_summary({"job_id": "j"}) is None  # no destination
    assert _as_batch_summary(["job_id", "destination"]) is None
    video = {**summary(detector=DETECTION), "job_id": "x", "destination": "/d"}  # a video summary all the same
    assert _as_batch_summary(video) is None and _as_summary(video) is not None


def test_a_video_summary_still_renders_as_before():
    page = results_page("d / r / t", summary(detector=DETECTION), sheet_url=None)
    assert page.startswith("<!doctype html>") and "<title>Video inference results: d / r / t</title>" in page
    assert "<h1>Video inference results</h1><p class='muted'>d / r / t</p>" in page
    assert "<th>frames</th><td>30</td>" in page and "Batch Processing" not in page
