"""The Batch Processing contract (videoinfer_contract.batch): ids, the video job body, typed answers, states."""

from __future__ import annotations

import datetime
from typing import Any

import pytest

from videoinfer_contract import batch
from videoinfer_contract.errors import InvalidAnswerError, InvalidInputError


def _definition(**values: Any) -> batch.VideoJobDefinition:
    return batch.VideoJobDefinition.build("my-workspace", "my-videos", "detect-and-count", **values)


def test_endpoint_paths_fill_and_encode_each_segment() -> None:
    path = batch.endpoint_path(batch.STAGE_TASKS_ENDPOINT, workspace="ws", job_id="job-1", stage_id="a/b")
    assert path == "/batch-processing/v1/external/ws/jobs/job-1/stages/a%2Fb/tasks"
    assert batch.endpoint_path(batch.BATCH_LIST_ENDPOINT, workspace="ws", batch_id="b") == (
        "/data-staging/v1/external/ws/batches/b/list"
    )
    assert {method for method, _ in batch.BATCH_PROCESSING_ENDPOINTS} == {"GET", "POST"}


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("", "non-empty"),
        ("My Job", "lower-case ASCII"),
        ("a" * 21, "at most 20"),
        (7, "non-empty string"),
    ],
)
def test_job_ids_outside_the_service_limits_are_refused_with_the_fix(value: Any, fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        batch.validate_batch_job_id(value)


def test_batch_ids_allow_64_characters_and_no_more() -> None:
    assert batch.validate_staging_batch_id("a" * 64) == "a" * 64
    with pytest.raises(InvalidInputError, match="at most 64"):
        batch.validate_staging_batch_id("a" * 65)
    with pytest.raises(InvalidInputError, match="'my-videos'"):
        batch.validate_staging_batch_id("My Videos")


def test_the_body_leaves_out_what_is_unset_and_reads_back_the_same() -> None:
    definition = _definition(
        aggregation_format="JSONL",
        max_video_fps=5.0,
        processing_timeout_seconds=600,
        max_parallel_tasks=2,
        workflow_parameters={"confidence": 0.4},
        machine_type="GPU",
        notifications_url="https://example.com/hook",
    )
    body = definition.to_payload()
    assert body["type"] == "simple-video-processing-v1"
    assert body["computeConfiguration"] == {"type": "compute-configuration-v2", "machineType": "gpu"}
    assert body["processingSpecification"]["aggregationFormat"] == "jsonl"
    assert body["processingSpecification"]["maxVideoFPS"] == 5
    assert "imageInputName" not in body["processingSpecification"]
    assert "notifications_url" not in repr(definition) and "example.com" not in repr(definition)
    again = batch.VideoJobDefinition.from_payload(body)
    assert again == definition
    assert again.fingerprint == definition.fingerprint
    assert _definition(max_parallel_tasks=3).fingerprint != definition.fingerprint


@pytest.mark.parametrize(
    ("values", "fragment"),
    [
        ({"aggregation_format": "xml"}, "aggregation_format must be one of 'csv', 'jsonl'"),
        ({"max_video_fps": 0}, "max_video_fps must be above 0"),
        ({"max_video_fps": "5"}, "max_video_fps must be a number"),
        ({"processing_timeout_seconds": 0}, "processing_timeout_seconds must be from 1"),
        ({"processing_timeout_seconds": 3.5}, "processing_timeout_seconds must be a whole number"),
        ({"max_parallel_tasks": True}, "max_parallel_tasks must be a whole number"),
        ({"machine_type": "tpu"}, "machine_type must be one of 'cpu', 'gpu'"),
        ({"workflow_parameters": '{"confidence": 0.4}'}, "render_template_as_native_obj"),
        ({"workflow_parameters": {"x": float("nan")}}, "cannot be sent as JSON"),
        ({"notifications_url": "ftp://host/hook"}, "notifications_url must be an http"),
        ({"persist_images_outputs": "false"}, "persist_images_outputs must be True or False"),
        ({"image_input_name": "my image"}, "image_input_name 'my image' holds a space"),
    ],
)
def test_each_user_value_is_checked_with_a_message_naming_it(values: dict[str, Any], fragment: str) -> None:
    with pytest.raises(InvalidInputError, match=fragment):
        _definition(**values)


def test_a_workflow_url_is_refused_as_a_workflow_id() -> None:
    with pytest.raises(InvalidInputError, match="the id, not the Workflow's URL"):
        batch.VideoJobDefinition.build("ws", "videos", "https://app.roboflow.com/ws/workflows/edit/x")


def test_a_wire_body_names_the_json_field_at_fault() -> None:
    body = _definition().to_payload()
    body["processingSpecification"]["maxVideoFPS"] = -1
    with pytest.raises(InvalidInputError, match=r"processingSpecification\.maxVideoFPS"):
        batch.VideoJobDefinition.from_payload(body)
    body = _definition().to_payload() | {"type": "simple-image-processing-v1"}
    with pytest.raises(InvalidInputError, match="videos only"):
        batch.VideoJobDefinition.from_payload(body)


def _job(**values: Any) -> dict[str, Any]:
    return {
        "jobId": "job-1",
        "name": "job-1",
        "jobDefinition": _definition().to_payload(),
        "createdAt": "2026-01-01T00:00:00Z",
        "lastUpdate": "2026-01-01T00:00:05+00:00",
    } | values


@pytest.mark.parametrize(
    ("values", "state"),
    [
        ({}, batch.BatchJobState.QUEUED),
        ({"currentStage": "processing"}, batch.BatchJobState.RUNNING),
        ({"isTerminal": True, "error": False}, batch.BatchJobState.SUCCEEDED),
        ({"isTerminal": True, "error": True, "lastNotification": "runtime cap reached"}, batch.BatchJobState.FAILED),
        ({"isTerminal": True, "error": True, "lastNotification": {"type": "job-aborted"}}, batch.BatchJobState.ABORTED),
    ],
)
def test_the_state_comes_from_is_terminal_error_and_the_abort_notification(
    values: dict[str, Any], state: batch.BatchJobState
) -> None:
    job = batch.parse_job({"job": _job(**values)})
    assert job.state is state
    assert state.is_terminal() == job.is_terminal
    assert state.can_restart() == (state in (batch.BatchJobState.FAILED, batch.BatchJobState.ABORTED))
    assert job.created_at.tzinfo is not None


def test_answers_missing_a_required_field_are_refused_naming_it() -> None:
    with pytest.raises(InvalidAnswerError, match="'jobId'"):
        batch.parse_job({"job": {k: v for k, v in _job().items() if k != "jobId"}})
    with pytest.raises(InvalidAnswerError, match="severity 'debug'"):
        batch.parse_logs_page(
            {
                "logs": [
                    {
                        "createdAt": "2026-01-01T00:00:00Z",
                        "severity": "debug",
                        "reportingModule": "m",
                        "logType": "t",
                        "payload": {},
                    }
                ]
            }
        )
    with pytest.raises(InvalidAnswerError, match="'tasksNumber'"):
        batch.parse_stages(
            {"stages": [{"processingStageId": "processing", "processingStageName": "processing", "tasksNumber": True}]}
        )


def test_pages_carry_their_token_and_files_hide_their_signed_url() -> None:
    page = batch.parse_files_page(
        {
            "filesMetadata": [
                {"fileName": "a.tar.gz", "downloadURL": "http://h/f?X-Goog-Signature=s", "contentType": "archives"}
            ],
            "nextPageToken": "2",
        }
    )
    assert page.next_page_token == "2"
    assert page.items[0].is_archive
    assert "Signature" not in repr(page)
    assert batch.parse_tasks_page({"tasks": [], "nextPageToken": None}).next_page_token is None


def test_datetimes_go_out_aware_and_naive_ones_read_as_utc() -> None:
    moment = datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.UTC)
    assert batch.format_datetime(moment) == "2026-01-02T03:04:05Z"
    assert batch.parse_datetime("2026-01-02T03:04:05", "x") == moment
    with pytest.raises(InvalidAnswerError, match="ISO 8601"):
        batch.parse_datetime("yesterday", "x")


def test_a_restart_override_round_trips_and_is_absent_when_empty() -> None:
    assert batch.RestartOverride().to_payload() is None
    assert batch.RestartOverride.from_payload(None) == batch.RestartOverride()
    override = batch.RestartOverride.build(processing_timeout_seconds=120, machine_type="gpu")
    body = override.to_payload()
    assert body == {
        "type": "parameters-override-v1",
        "processingTimeoutSeconds": 120,
        "computeConfiguration": {"type": "compute-configuration-v2", "machineType": "gpu"},
    }
    assert batch.RestartOverride.from_payload(body) == override
    with pytest.raises(InvalidInputError, match="maxParallelTasks must be from 1"):
        batch.RestartOverride.from_payload({"type": "parameters-override-v1", "maxParallelTasks": 0})
