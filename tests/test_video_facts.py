"""Video facts against ffprobe, the estimate against the local server's result, and the checks and caps
of the submit operator, on real files of every container made at test time with Debian's ffmpeg."""

from __future__ import annotations

import json
import logging
from fractions import Fraction
from pathlib import Path
from typing import Any, NamedTuple

import pytest
from helpers import connection_json, server_jobs, task_context
from video_files import AUDIO_ONLY, VIDEOS, ffprobe_facts, have_ffmpeg, make

from airflow_provider_videoinfer.exceptions import VideoInferOverBudgetError, VideoInferValidationError
from airflow_provider_videoinfer.hooks.videoinfer import VideoInferHook
from airflow_provider_videoinfer.operators.cost import read_video_facts
from airflow_provider_videoinfer.operators.videoinfer import VideoInferSubmitJobOperator
from videoinfer_contract.estimate import FrameSampling, check_job, estimate, sampled_frame_count
from videoinfer_contract.facts import BLOCK_SIZE, ByteSource, VideoFacts, local_facts, read_facts

pytestmark = pytest.mark.skipif(not have_ffmpeg(), reason="ffmpeg/ffprobe not installed (make test installs them)")

MOTION = {"model_id": "motion-detection", "model_version": "1", "inference_type": "object-detection"}
SHARPNESS = {"model_id": "sharpness-classification", "model_version": "1", "inference_type": "classification"}
CONTAINERS = {"mov,mp4,m4a,3gp,3g2,mj2": {"MP4"}, "matroska,webm": {"Matroska", "WebM"}, "avi": {"AVI"}}


@pytest.fixture(scope="module")
def videos(tmp_path_factory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("facts")
    return {spec.name: make(spec, folder) for spec in (*VIDEOS, AUDIO_ONLY)}


@pytest.mark.parametrize("name", [spec.name for spec in VIDEOS])
def test_each_fact_is_what_ffprobe_reports(videos, name):
    facts = local_facts(videos[name])
    probe = ffprobe_facts(videos[name])

    assert facts.problem is None, facts.problem
    assert facts.has_video is True
    assert facts.container in CONTAINERS[probe["format_name"]]
    assert facts.container == ("WebM" if name.endswith(".webm") else facts.container)
    assert facts.codec == probe["codec"]
    assert (facts.width, facts.height) == (probe["width"], probe["height"])
    assert facts.frame_rate == probe["frame_rate"]
    assert facts.frame_count == probe["frame_count"]
    assert facts.duration == pytest.approx(probe["duration"], abs=1e-3)
    # Every header of these small files is in the first block: one read.
    assert (facts.requests, facts.bytes_read) == (1, min(BLOCK_SIZE, videos[name].stat().st_size))


def test_a_variable_frame_rate_is_an_average_and_said_so(videos):
    facts = local_facts(videos["vfr.mp4"])
    assert facts.constant_frame_rate is False
    assert facts.frame_rate == Fraction(facts.frame_count) / Fraction(facts.duration).limit_denominator(1000)
    assert "on average (variable frame rate)" in facts.describe()
    assert local_facts(videos["moov_first_24.mp4"]).constant_frame_rate is True


def test_a_file_without_a_video_track_says_so_and_no_job_runs_on_it(videos):
    facts = local_facts(videos["audio_only.mp4"])
    assert ffprobe_facts(videos["audio_only.mp4"]) == {"has_video": False}
    assert (facts.container, facts.has_video, facts.frame_rate, facts.frame_count) == ("MP4", False, None, None)
    assert facts.problem == "it has no video track"
    (finding,) = check_job(facts, 5)
    assert finding.error and "no video track" in finding.message


@pytest.mark.parametrize("name", ["moov_first_24.mp4", "moov_last_2997.mp4", "matroska_2997.mkv", "avi_15.avi"])
@pytest.mark.parametrize("cut", [16, 200, 0.6])
def test_a_damaged_header_leaves_the_facts_unknown_and_never_raises(videos, tmp_path, name, cut):
    data = videos[name].read_bytes()
    damaged = tmp_path / name
    keep = cut if isinstance(cut, int) else int(len(data) * cut)
    # A truncated file; where the headers come first, their end is overwritten with bytes no parser reads.
    damaged.write_bytes(data[:keep] + b"\xff" * 64)
    facts = local_facts(damaged)
    assert facts.frame_count is None or facts.frame_count == local_facts(videos[name]).frame_count
    if facts.frame_count is None:
        assert facts.problem


def test_bytes_of_no_container_and_a_missing_file_are_unknown(tmp_path):
    (tmp_path / "text.mp4").write_bytes(b"<html>not a video</html>")
    facts = local_facts(tmp_path / "text.mp4")
    assert facts == VideoFacts(problem=facts.problem, requests=1, bytes_read=24)
    assert "match no video container" in facts.problem
    missing = local_facts(tmp_path / "missing.mp4")
    assert missing.frame_rate is None and "cannot be read" in missing.problem
    assert check_job(facts, 30) == [] and estimate(facts, 30, 1) is None


def test_reads_stop_at_the_budget_and_the_facts_say_why(videos):
    data = videos["moov_last_2997.mp4"].read_bytes()
    source = ByteSource(lambda offset, length: data[offset : offset + length], len(data), "clip", block_size=8)
    facts = read_facts(source)
    assert facts.frame_rate is None and facts.requests == source.max_requests
    assert "needs more than 16 requests" in facts.problem


def test_the_sampling_count_is_the_frames_the_rule_takes():
    for fps in (Fraction(24), Fraction(30000, 1001), Fraction(25, 2), Fraction(600, 29)):
        for infer_fps in (1, 2, 5, 7, 12):
            if infer_fps > fps:
                continue
            for frames in (0, 1, 2, 47, 48, 49, 301):
                sampling = FrameSampling(fps, infer_fps)
                taken = sum(sampling.take(index) for index in range(frames))
                assert sampled_frame_count(frames, fps, infer_fps) == taken, (fps, infer_fps, frames)


@pytest.mark.parametrize(
    ("infer_fps", "error", "words"),
    [
        (
            30,
            True,
            "infer_fps 30 is above the video's frame rate, 25 fps: the service returns no output for such a "
            "job. Pass infer_fps=25 or less.",
        ),
        (
            7,
            False,
            "is not a multiple of infer_fps 7: the sampled frames are unevenly spaced in time; the nearest "
            "infer_fps that are: 5 or 25.",
        ),
        (5, None, ""),
    ],
)
def test_the_checks_name_the_numbers_and_the_fix(videos, infer_fps, error, words):
    findings = check_job(local_facts(videos["webm_25.webm"]), infer_fps)
    if error is None:
        assert findings == []
        return
    (finding,) = findings
    assert finding.error is error and words in finding.message


def test_ntsc_rates_are_checked_against_their_whole_rate(videos):
    facts = local_facts(videos["moov_last_2997.mp4"])
    assert check_job(facts, 10) == [] and check_job(facts, 15) == []
    (finding,) = check_job(facts, 7)
    assert "29.97 fps (30000/1001)" in finding.message and "6 or 10" in finding.message
    (too_high,) = check_job(facts, 30)
    assert too_high.error and "Pass infer_fps=29 or less, ideally 15, which divides the frame rate" in too_high.message


# --- the local server samples exactly the frames the estimate says --------------------------------

JOBS = [
    ("moov_first_24.mp4", 5, [MOTION]),
    ("moov_last_2997.mp4", 7, [MOTION, SHARPNESS]),
    ("moov_last_23976_audio.mp4", 4, [SHARPNESS]),
    ("mpeg4_25.mp4", 3, [SHARPNESS]),
    ("matroska_2997.mkv", 10, [SHARPNESS]),
    ("matroska_50.mkv", 50, [SHARPNESS]),
    ("webm_25.webm", 6, [MOTION, SHARPNESS]),
    ("webm_vp9_30.webm", 30, [SHARPNESS]),
    ("avi_15.avi", 15, [SHARPNESS]),
    ("avi_2997_mjpeg.avi", 29, [SHARPNESS]),
    ("vfr.mp4", 5, [SHARPNESS]),
]


def test_the_estimate_equals_the_frames_of_the_local_servers_result(videos, videoinfer_conn, tmp_path):
    hook = VideoInferHook()
    submitted = []
    for name, infer_fps, models in JOBS:
        job_id = hook.submit_job(hook.upload_video(videos[name]), infer_fps, models)
        submitted.append((name, infer_fps, models, job_id))
    for name, infer_fps, models, job_id in submitted:
        done = hook.wait_for_job(job_id, poll_interval=0.2, timeout=120)
        result = json.loads(Path(hook.download_result(done.output_url, tmp_path / f"{job_id}.json")).read_text())
        found = estimate(local_facts(videos[name]), infer_fps, len(models))
        assert found is not None and found.exact
        assert found.sampled_frames == len(result["frame_offset"]), name
        assert found.frames == sum(len(result[model["model_id"]]) for model in models), name


# --- the submit operator: checks, caps, dry run, estimate in XCom ---------------------------------


class Uploaded(NamedTuple):
    path: Path
    url: str
    server: Any

    def jobs(self) -> int:
        return len(server_jobs(self.server))


@pytest.fixture
def uploaded(videos, videoinfer_conn) -> Uploaded:
    """The 25 fps WebM video (50 frames): its path, the local server's signed upload URL of it, the server."""
    path = videos["webm_25.webm"]
    return Uploaded(path, VideoInferHook().upload_video(path), videoinfer_conn)


def submit(input_url, **kwargs):
    options = {"infer_fps": 5, "models": [MOTION, SHARPNESS], **kwargs}
    return VideoInferSubmitJobOperator(task_id="submit", input_url=input_url, **options)


def test_infer_fps_above_the_frame_rate_fails_before_any_job(uploaded):
    before = uploaded.jobs()
    with pytest.raises(VideoInferValidationError, match="infer_fps 30 is above the video's frame rate, 25 fps") as info:
        submit(uploaded.url, video=str(uploaded.path), infer_fps=30).execute(context=task_context())
    assert "Pass infer_fps=25 or less" in str(info.value) and "No job was submitted" in str(info.value)
    assert uploaded.jobs() == before


def test_max_frames_refuses_a_job_over_it_naming_the_estimate_the_cap_and_the_fix(uploaded):
    before = uploaded.jobs()
    context = task_context()
    with pytest.raises(VideoInferOverBudgetError) as info:
        submit(uploaded.url, video=str(uploaded.path), max_frames=19).execute(context=context)
    message = str(info.value)
    assert "10 sampled frames × 2 models = 20 frames billed" in message
    assert "above max_frames = 19" in message and "Raise max_frames to at least 20" in message
    assert uploaded.jobs() == before
    assert context["ti"].pushed["estimate"]["frames"] == 20


def test_max_video_seconds_refuses_a_longer_video(uploaded):
    with pytest.raises(VideoInferOverBudgetError, match=r"lasts 2 s, above max_video_seconds = 1.5 s\. Raise "):
        submit(uploaded.url, video=str(uploaded.path), max_video_seconds=1.5).execute(context=task_context())


def test_the_connection_sets_the_caps_once(uploaded, monkeypatch):
    monkeypatch.setenv("AIRFLOW_CONN_VIDEOINFER_CAPPED", connection_json(uploaded.server.base_url, max_frames=10))
    capped = {"video": str(uploaded.path), "videoinfer_conn_id": "videoinfer_capped"}
    with pytest.raises(VideoInferOverBudgetError) as info:
        submit(uploaded.url, **capped).execute(context=task_context())
    assert "above max_frames of connection 'videoinfer_capped' (its extra) = 10" in str(info.value)
    # The operator's own cap wins over the connection's.
    job_id = submit(uploaded.url, **capped, max_frames=20).execute(context=task_context())
    assert job_id in {job["job_id"] for job in server_jobs(uploaded.server)}


def test_a_dry_run_returns_the_facts_and_the_estimate_and_submits_nothing(uploaded):
    before = uploaded.jobs()
    answer = submit(uploaded.url, video=str(uploaded.path), dry_run=True).execute(context=task_context())
    assert uploaded.jobs() == before
    assert answer["frames"] == 20 and answer["sampled_frames"] == 10 and answer["exact"] is True
    assert answer["facts"]["container"] == "WebM" and answer["facts"]["frame_rate"] == "25/1"
    assert json.loads(json.dumps(answer)) == answer  # JSON, for XCom


def logged(caplog, capfd) -> str:
    out, err = capfd.readouterr()
    return caplog.text + out + err


def test_the_warning_is_logged_and_the_job_submitted_with_its_estimate(uploaded, tmp_path, caplog, capfd):
    context = task_context()
    waiting = {"wait_for_completion": True, "poll_interval": 0.2}
    with caplog.at_level(logging.INFO):
        output_url = submit(uploaded.url, video=str(uploaded.path), infer_fps=7, **waiting).execute(context=context)
    text = logged(caplog, capfd)
    assert "is not a multiple of infer_fps 7" in text and "nearest infer_fps that are: 5 or 25" in text
    assert "WebM vp8 160x120, 25 fps, 50 frames, 2 s" in text
    assert "Estimate: 14 sampled frames × 2 models = 28 frames billed (infer_fps 7)" in text
    pushed = context["ti"].pushed["estimate"]
    result = json.loads(Path(VideoInferHook().download_result(output_url, tmp_path / "result.json")).read_text())
    assert pushed["sampled_frames"] == len(result["frame_offset"]) == 14
    assert pushed["frames"] == len(result["motion-detection"]) + len(result["sharpness-classification"])


def test_unreadable_facts_never_block_a_job(uploaded, caplog, capfd):
    # The local server, like the hosted service, lets no one GET an upload URL: no facts.
    context = task_context()
    with caplog.at_level(logging.INFO):
        job_id = submit(uploaded.url, max_frames=1).execute(context=context)
    text = logged(caplog, capfd)
    assert job_id and context["ti"].pushed["estimate"]["frames"] is None
    assert "No estimate" in text and "cannot be checked" in text
    assert "HTTP 405" in context["ti"].pushed["estimate"]["facts"]["problem"]
    signature = uploaded.url.split("X-Goog-Signature=")[1].split("&")[0]
    assert signature not in text + json.dumps(context["ti"].pushed)


@pytest.mark.parametrize(
    ("value", "words"), [(0, "max_frames must be"), (2.5, "max_frames must be"), (True, "max_frames")]
)
def test_caps_are_checked_at_parse_time(value, words):
    with pytest.raises(VideoInferValidationError, match=words):
        submit("https://example.com/clip.mp4", max_frames=value)
    with pytest.raises(VideoInferValidationError, match="max_video_seconds must be a positive number"):
        submit("https://example.com/clip.mp4", max_video_seconds=-1)


def test_read_video_facts_takes_a_path_a_file_uri_and_a_url(videos):
    path = videos["avi_15.avi"]
    assert read_video_facts(str(path)).frame_count == 30
    assert read_video_facts(path.as_uri()).frame_count == 30
    unreachable = read_video_facts("http://127.0.0.1:9/clip.mp4?sig=secret")
    assert unreachable.frame_rate is None and "secret" not in (unreachable.problem or "")


def test_the_results_view_shows_the_estimate_beside_what_the_result_holds():
    from airflow_provider_videoinfer.ui.render import results_page

    summary = {"frames": 10, "models": {"a": {"frames": 10}, "b": {"frames": 10}}}
    estimate = {"sampled_frames": 10, "models": 2, "frames": 20, "exact": True}
    page = results_page("t", summary, None, estimate)
    assert "<th>estimated before the job</th><td>10 sampled frames × 2 models = 20 frames billed</td>" in page
    assert "<th>in the result file</th><td>10 sampled frames × 2 models = 20 frames billed</td>" in page
    assert "estimated before" not in results_page("t", summary, None, {"frames": None, "facts": {}})
    rough = results_page("t", summary, None, {**estimate, "exact": False})
    assert "about 10 sampled frames × 2 models = about 20 frames billed" in rough


def test_a_fragmented_mp4_has_unknown_counts_and_its_job_goes_on(tmp_path):
    from video_files import Made

    spec = Made("fragmented.mp4", "25", output=("-c:v", "libx264", "-movflags", "frag_keyframe+empty_moov"))
    facts = local_facts(make(spec, tmp_path))
    assert (facts.container, facts.codec, facts.width, facts.has_video) == ("MP4", "h264", 160, True)
    assert facts.frame_count is None and facts.frame_rate is None and facts.constant_frame_rate is None
    assert "fragmented" in facts.problem
    assert check_job(facts, 30) == [] and estimate(facts, 30, 1) is None
