"""Data Staging: ``/data-staging/v1/external/{workspace}/batches...``, and the signed URLs it hands out.

Videos come by ``upload/video`` (a signed ``PUT`` URL back to this server, with one extension
header the client must send, as Google Cloud Storage's signed URLs have) or by reference
(``bulk-upload/video-references``, fetched in the background when the server may fetch remote URLs).
Files go out through signed ``GET`` URLs (``downloadURL``). Upload and download URLs live under
different paths, so one signature never serves the other method.
"""

from __future__ import annotations

import re
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, Response

from videoinfer_contract import batch as contract
from videoinfer_server.batch.http import Service, iso, next_token, page_window
from videoinfer_server.batch.service import BatchRequestError
from videoinfer_server.batch.store import PENDING, READY, BatchRow, FileRow
from videoinfer_server.routes.common import Authenticated, Runtime, base_url, json_body, receive_file, verify_signed_url

router = APIRouter()

#: The header a ``PUT`` to an upload URL must carry (handed out in ``extensionHeaders``).
UPLOAD_HEADER = "X-Goog-Content-Length-Range"
_SAFE = re.compile(r"[^A-Za-z0-9._-]+")


def _batch_json(service: Any, batch: BatchRow) -> dict[str, Any]:
    return {
        "displayName": batch.display_name,
        "batchId": batch.batch_id,
        "batchType": batch.batch_type,
        "batchContentType": batch.content_type,
        "createdDate": iso(batch.created_at),
        "expiryDate": iso(batch.created_at + service.config.retention_seconds),
    }


@router.post("/")
async def workspace_post(runtime: Authenticated) -> dict[str, Any]:
    """``POST /``: the workspace, as ``GET /`` (the ``roboflow`` SDK posts)."""
    return {"workspace": runtime.config.workspace}


@router.get(contract.LIST_BATCHES_ENDPOINT[1])
async def list_batches(request: Request, service: Service) -> dict[str, Any]:
    """List the batches, inputs and job outputs alike, oldest first."""
    offset, limit = page_window(request)
    batches = service.store.list_batches(offset, limit + 1)
    return {
        "batches": [_batch_json(service, batch) for batch in batches[:limit]],
        "nextPageToken": next_token(offset, limit, len(batches) > limit),
    }


@router.get(contract.BATCH_METADATA_ENDPOINT[1])
async def batch_metadata(service: Service, batch_id: str) -> dict[str, Any]:
    """A batch's metadata."""
    return {"batch": _batch_json(service, service.batch(batch_id))}


def _part(service: Any, batch: BatchRow, request: Request) -> str | None:
    part = request.query_params.get("partName")
    if part is None:
        return None if batch.batch_type == "multipart-batch" else ""
    if batch.batch_type != "multipart-batch":
        raise BatchRequestError(
            400, f"batch {batch.batch_id!r} is a {batch.batch_type}: it has no parts; leave partName out"
        )
    if part not in {entry["part_name"] for entry in service.store.parts(batch.batch_id)}:
        raise BatchRequestError(404, f"batch {batch.batch_id!r} has no part {part!r}: GET its /parts for their names")
    return part


@router.get(contract.BATCH_COUNT_ENDPOINT[1])
async def batch_count(request: Request, service: Service, batch_id: str) -> dict[str, Any]:
    """How many stored files a batch (or a part of it) holds; videos being ingested count once fetched."""
    batch = service.batch(batch_id)
    return {"count": service.store.count(batch_id, _part(service, batch, request)), "status": "ok"}


@router.get(contract.BATCH_PARTS_ENDPOINT[1])
async def batch_parts(service: Service, batch_id: str) -> dict[str, Any]:
    """The parts of a multipart batch (none for the others)."""
    service.batch(batch_id)
    return {
        "batchParts": [
            {
                "partName": part["part_name"],
                "partType": part["part_type"],
                "contentType": part["content_type"],
                "partDescription": part["description"],
                "nestedContentType": part["nested_content_type"],
            }
            for part in service.store.parts(batch_id)
        ]
    }


def _download_url(runtime: Any, request: Request, item: FileRow) -> str:
    name = _SAFE.sub("_", item.file_name)[:120] or "file"
    path = f"/staging-downloads/{item.file_id}/{name}"
    return base_url(runtime, request) + runtime.signer.sign(path, runtime.config.result_url_seconds)


@router.get(contract.BATCH_LIST_ENDPOINT[1])
async def batch_list(request: Request, runtime: Authenticated, service: Service, batch_id: str) -> dict[str, Any]:
    """A page of a batch's stored files with signed download URLs (of every part when no ``partName``)."""
    batch = service.batch(batch_id)
    part = _part(service, batch, request)
    offset, limit = page_window(request)
    files = service.store.files(batch_id, part, READY, offset, limit + 1)
    entries = []
    for item in files[:limit]:
        entry: dict[str, Any] = {
            "downloadURL": _download_url(runtime, request, item),
            "fileName": item.file_name,
            "contentType": item.content_type,
        }
        if item.part_name:
            entry["partName"] = item.part_name
        if item.shard_id:
            entry["shardId"] = item.shard_id
        entries.append(entry)
    return {"filesMetadata": entries, "nextPageToken": next_token(offset, limit, len(files) > limit)}


@router.get(contract.BATCH_SHARDS_ENDPOINT[1])
async def batch_shards(request: Request, service: Service, batch_id: str) -> dict[str, Any]:
    """A page of a batch's reference ingests (one shard each) and their status."""
    service.batch(batch_id)
    offset, limit = page_window(request)
    shards = service.store.shards(batch_id, offset, limit + 1)
    return {
        "shards": [
            {
                "shardId": shard.shard_id,
                "statusName": shard.status_name,
                "statusType": shard.status_type,
                "eventTimestamp": iso(shard.event_at),
                "shardObjectsCount": shard.objects,
                "statusMetadata": shard.metadata,
            }
            for shard in shards[:limit]
        ],
        "nextPageToken": next_token(offset, limit, len(shards) > limit),
    }


@router.post(contract.UPLOAD_VIDEO_ENDPOINT[1])
async def upload_video(request: Request, runtime: Authenticated, service: Service, batch_id: str) -> dict[str, Any]:
    """A signed ``PUT`` URL for one video of a simple batch (created by its first upload)."""
    params = request.query_params
    file_id, _name = service.new_upload(batch_id, params.get("fileName"), params.get("displayName"))
    path = runtime.signer.sign(f"/staging-uploads/{file_id}", runtime.config.upload_url_seconds)
    limit_header = f"0,{runtime.config.max_upload_bytes}"
    return {
        "status": "ok",
        "signedURLDetails": {
            "uploadURL": base_url(runtime, request) + path,
            "method": "PUT",
            "extensionHeaders": {UPLOAD_HEADER: limit_header},
        },
        "maxFileSizeBytes": runtime.config.max_upload_bytes,
    }


@router.post(contract.VIDEO_REFERENCES_ENDPOINT[1])
async def video_references(request: Request, service: Service, batch_id: str) -> dict[str, Any]:
    """Register videos by signed URL; the server fetches them in the background (``/count``, ``/shards``)."""
    body = await json_body(request)
    return service.ingest_references(batch_id, request.query_params.get("displayName"), body)


@router.put("/staging-uploads/{file_id}")
async def put_video(request: Request, runtime: Runtime, file_id: str) -> Response:
    """``PUT`` to a signed upload URL: the video's bytes, with the extension header handed out."""
    verify_signed_url(runtime, request)
    service = runtime.batch
    item = service.store.get_file(file_id)
    if item is None or item.state not in (PENDING, READY) or item.source_url:
        raise BatchRequestError(404, "this upload URL is unknown, or its batch expired")
    if UPLOAD_HEADER.lower() not in {name.lower() for name in request.headers}:
        raise BatchRequestError(
            400, f"the PUT lacks the header {UPLOAD_HEADER}: send every header of signedURLDetails.extensionHeaders"
        )
    size = await receive_file(request, service.paths.file(file_id, item.ext), runtime.config.max_upload_bytes)
    if size is None:
        return Response(status_code=400)
    service.store.set_file_state(file_id, READY, size=size)
    return Response(status_code=200)


@router.get("/staging-downloads/{file_id}/{name}")
async def download(request: Request, runtime: Runtime, file_id: str) -> Response:
    """``GET`` of a signed download URL: the file."""
    verify_signed_url(runtime, request)
    service = runtime.batch
    item = service.store.get_file(file_id)
    path = service.paths.file(file_id, item.ext) if item else None
    if item is None or item.state != READY or path is None or not path.is_file():
        raise BatchRequestError(404, "no such file (its batch expired after the retention period?)")
    return FileResponse(path, filename=item.file_name, media_type="application/octet-stream")
