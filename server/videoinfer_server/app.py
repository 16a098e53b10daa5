"""The FastAPI app of the local server: the contract's routes (Video Inference API and Batch Processing),
the local-only routes, and the lifespan.

The routes live in :mod:`videoinfer_server.routes`; everything else a server owns
(store, signer, models, workers) in :class:`~videoinfer_server.runtime.ServerRuntime`.
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from videoinfer_server.batch import job_routes, staging_routes
from videoinfer_server.batch.http import batch_error_answer
from videoinfer_server.batch.service import BatchRequestError
from videoinfer_server.config import ServerConfig
from videoinfer_server.fault_injection import FaultMiddleware
from videoinfer_server.models.registry import ModelRegistry
from videoinfer_server.routes import contract, local
from videoinfer_server.routes.common import ApiError, api_error_answer
from videoinfer_server.runtime import ServerRuntime

log = logging.getLogger(__name__)


def create_app(config: ServerConfig, registry: ModelRegistry | None = None) -> FastAPI:
    """Build the app; its lifespan starts and stops the workers.

    :param config: the settings.
    :param registry: the models; built from ``config`` (built-ins, entry points, ``config.models``) when None.
    """
    runtime = ServerRuntime(config, registry)

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        runtime.start()
        log.info("local videoinfer server started on data dir %s", config.data_dir)
        try:
            yield
        finally:
            runtime.stop()

    app = FastAPI(
        title="videoinfer local server",
        description="Offline server speaking the Video Inference API and Batch Processing.",
        lifespan=lifespan,
        redirect_slashes=False,
    )
    app.state.runtime = runtime
    app.add_middleware(FaultMiddleware, faults=runtime.faults)
    app.add_exception_handler(ApiError, api_error_answer)
    app.add_exception_handler(BatchRequestError, batch_error_answer)
    app.include_router(contract.router)
    app.include_router(staging_routes.router)
    app.include_router(job_routes.router)
    app.include_router(local.router)
    if config.enable_faults:
        app.include_router(local.faults_router)
    return app
