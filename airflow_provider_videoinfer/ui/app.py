"""The results view's routes, mounted in Airflow's api-server by :mod:`.plugin`.

Each route needs the signed-in user's permission to read the DAG's XComs, checked by Airflow's
own dependency (``requires_access_dag``: the JWT of the ``Authorization`` header or of the UI's
``_token`` cookie, then the auth manager's verdict for that DAG). The data is the XCom summary of
a ``VideoInferResultsOperator`` or a ``VideoInferBatchResultsOperator`` task instance; the only
file served is the contact sheet a video summary names, and only when it is a PNG.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping
from typing import Any, cast

from airflow.api_fastapi.auth.managers.models.resource_details import DagAccessEntity
from airflow.api_fastapi.common.db.common import SessionDep
from airflow.api_fastapi.core_api.security import requires_access_dag
from fastapi import Depends, FastAPI, HTTPException, Request
from fastapi.responses import HTMLResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session

from airflow_provider_videoinfer.operators.batch_results import BatchResultsSummary
from airflow_provider_videoinfer.results.summary import ResultSummary
from airflow_provider_videoinfer.storage import open_location
from airflow_provider_videoinfer.ui import render

URL_PREFIX = "/videoinfer"
RESULTS_OPERATOR = "VideoInferResultsOperator"
BATCH_RESULTS_OPERATOR = "VideoInferBatchResultsOperator"
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
HEADERS = {
    # No script, no remote resource: the page is static HTML and SVG plus its own image.
    "Content-Security-Policy": "default-src 'none'; img-src 'self'; style-src 'unsafe-inline'; frame-ancestors 'self'",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "no-referrer",
}

app = FastAPI(title="Video inference results", docs_url=None, redoc_url=None, openapi_url=None)
_can_read = Depends(requires_access_dag("GET", DagAccessEntity.XCOM))


def _map_index(value: str | None) -> int:
    # The UI fills {MAP_INDEX} only for mapped task instances; anything else is the unmapped -1.
    try:
        return int(value) if value is not None else -1
    except ValueError:
        return -1


def _summary(
    session: Session, dag_id: str, run_id: str, task_id: str, map_index: int
) -> tuple[str | None, str | None, str | None, Any]:
    """The task instance's operator name, state and label, and its XCom return value (None when absent)."""
    from airflow.models.taskinstance import TaskInstance
    from airflow.models.xcom import XComModel

    ti = session.scalars(
        select(TaskInstance).where(
            TaskInstance.dag_id == dag_id,
            TaskInstance.run_id == run_id,
            TaskInstance.task_id == task_id,
            TaskInstance.map_index == map_index,
        )
    ).first()
    if ti is None:
        return None, None, None, None
    row = session.scalars(
        select(XComModel).where(
            XComModel.dag_id == dag_id,
            XComModel.run_id == run_id,
            XComModel.task_id == task_id,
            XComModel.map_index == map_index,
            XComModel.key == "return_value",
        )
    ).first()
    return ti.operator, ti.state, ti.rendered_map_index, None if row is None else XComModel.deserialize_value(row)


def _estimate(session: Session, dag_id: str, run_id: str, map_index: int) -> Any:
    """The job estimate a submit task of the run pushed for the same map index (XCom ``estimate``), or None."""
    from airflow.models.xcom import XComModel

    row = session.scalars(
        select(XComModel).where(
            XComModel.dag_id == dag_id,
            XComModel.run_id == run_id,
            XComModel.map_index == map_index,
            XComModel.key == "estimate",
        )
    ).first()
    return None if row is None else XComModel.deserialize_value(row)


@app.get("/results/{dag_id}/{run_id}/{task_id}", response_class=HTMLResponse, dependencies=[_can_read])
def results_view(
    dag_id: str, run_id: str, task_id: str, request: Request, session: SessionDep, map_index: str | None = None
) -> HTMLResponse:
    """The page of one task instance's results: figures, charts, contact sheet and files kept."""
    index = _map_index(map_index)
    operator, state, label, value = _summary(session, dag_id, run_id, task_id, index)
    title = f"{dag_id} / {run_id} / {task_id}" + (f" [{label or index}]" if index >= 0 else "")
    if operator is None:
        page = render.message_page("No such task instance", f"{title} is not known to Airflow.")
        return HTMLResponse(page, status_code=404, headers=HEADERS)
    batch = _as_batch_summary(value)
    if batch is not None:
        return HTMLResponse(render.batch_results_page(title, batch, value), headers=HEADERS)
    summary = _as_summary(value)
    if operator not in (RESULTS_OPERATOR, BATCH_RESULTS_OPERATOR) and summary is None:  # a subclass's is shown
        text = (
            f"This view shows the results of {RESULTS_OPERATOR} and {BATCH_RESULTS_OPERATOR} tasks; "
            f"{task_id} is a {operator}."
        )
        return HTMLResponse(render.message_page("Not a results task", text), headers=HEADERS)
    if summary is None:
        text = (
            f"{title} has no results summary: its state is {state or 'not set yet'}. "
            "The view fills in once the task has succeeded."
        )
        return HTMLResponse(render.message_page("No results yet", text), headers=HEADERS)
    sheet_url = None
    if _sheet_location(summary):
        sheet_url = str(request.url_for("contact_sheet", dag_id=dag_id, run_id=run_id, task_id=task_id).path)
        sheet_url += f"?map_index={index}"
    estimate = _estimate(session, dag_id, run_id, index)
    return HTMLResponse(render.results_page(title, summary, sheet_url, estimate), headers=HEADERS)


def _as_summary(value: Any) -> ResultSummary | None:
    """The XCom value as a results summary, or None when it is not one (read defensively all the same)."""
    return cast(ResultSummary, value) if isinstance(value, Mapping) and "models" in value else None


def _as_batch_summary(value: Any) -> BatchResultsSummary | None:
    """The XCom value as a batch results summary, or None when it is not one."""
    if isinstance(value, Mapping) and "models" not in value:
        with contextlib.suppress(ValueError):
            return BatchResultsSummary.from_dict(value)
    return None


def _sheet_location(summary: ResultSummary) -> str | None:
    sheet: Any = summary.get("contact_sheet")
    location = sheet.get("location") if isinstance(sheet, Mapping) else None
    return location if isinstance(location, str) and location.lower().endswith(".png") else None


@app.get("/contact-sheet/{dag_id}/{run_id}/{task_id}", name="contact_sheet", dependencies=[_can_read])
def contact_sheet(
    dag_id: str, run_id: str, task_id: str, session: SessionDep, map_index: str | None = None
) -> StreamingResponse:
    """The contact sheet PNG that the task instance's summary names."""
    *_, value = _summary(session, dag_id, run_id, task_id, _map_index(map_index))
    summary = _as_summary(value)
    location = _sheet_location(summary) if summary is not None else None
    if location is None:
        raise HTTPException(404, "This task instance's summary names no contact sheet.")
    try:
        handle = open_location(location, "rb")
    except (OSError, ValueError) as err:
        raise HTTPException(404, "The contact sheet is no longer where the summary says it was kept.") from err
    if handle.read(len(PNG_SIGNATURE)) != PNG_SIGNATURE:
        handle.close()
        raise HTTPException(404, "The file the summary names as contact sheet is not a PNG.")

    def chunks() -> Iterator[bytes]:
        with handle:
            yield PNG_SIGNATURE
            while chunk := handle.read(1 << 16):
                yield chunk

    return StreamingResponse(chunks(), media_type="image/png", headers=HEADERS)
