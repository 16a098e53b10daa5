"""The ``videoinfer-server`` command.

::

    videoinfer-server [serve] --host 127.0.0.1 --port 9050 --data-dir DIR --api-key KEY [options]
    videoinfer-server models [--model module:callable ...]
    videoinfer-server sample OUT.mp4 [--seconds S] [--fps F] [--width W] [--height H] [--objects N | --faces]
"""

from __future__ import annotations

import argparse
import logging
import os
import secrets
import sys
from collections.abc import Sequence
from pathlib import Path

from videoinfer_contract.redaction import install_log_redaction
from videoinfer_server.config import DEFAULT_MAX_UPLOAD_BYTES, ServerConfig

COMMANDS = ("serve", "models", "sample")


def _serve_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="videoinfer-server",
        description="Local server speaking the Video Inference API. Other commands: "
        "`videoinfer-server models` lists the models, `videoinfer-server sample OUT.mp4` writes a test video.",
    )
    p.add_argument("--host", default="127.0.0.1", help="interface to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=9050, help="port (default 9050)")
    p.add_argument(
        "--data-dir",
        default=os.environ.get("VIDEOINFER_DATA_DIR", "videoinfer-data"),
        help="folder of the database, uploads and results (env VIDEOINFER_DATA_DIR; default ./videoinfer-data)",
    )
    p.add_argument(
        "--api-key",
        default=os.environ.get("VIDEOINFER_API_KEY"),
        help="API key clients must send (env VIDEOINFER_API_KEY; a random one is printed when unset)",
    )
    p.add_argument("--workspace", default="local", help="workspace name answered by GET / (default local)")
    p.add_argument("--workers", type=int, default=2, help="parallel jobs (default 2)")
    p.add_argument(
        "--max-upload-bytes",
        type=int,
        default=DEFAULT_MAX_UPLOAD_BYTES,
        help="largest upload (default 2 GiB)",
    )
    p.add_argument("--retention-days", type=float, default=7.0, help="keep uploads and results this long (default 7)")
    p.add_argument("--allow-remote-urls", action="store_true", help="let input_url be any http(s) URL")
    p.add_argument(
        "--poll-min-interval",
        type=float,
        default=0.0,
        help="answer 429 to faster polls of one job (default off)",
    )
    p.add_argument("--enable-faults", action="store_true", help="serve the /_faults fault injection endpoints")
    p.add_argument(
        "--min-job-seconds",
        type=float,
        default=0.0,
        help="jobs report status 1 at least this long (default 0)",
    )
    p.add_argument(
        "--batch-frame-delay",
        type=float,
        default=0.0,
        help="for tests: Batch Processing tasks wait this long before each sampled frame (default 0)",
    )
    p.add_argument("--model", action="append", default=[], metavar="MODULE:CALLABLE", help="add models (repeatable)")
    p.add_argument("--no-entry-points", action="store_true", help="ignore 'videoinfer.models' entry points")
    p.add_argument("--public-url", help="base URL put in signed URLs (default: the URL a request came to)")
    p.add_argument("--log-level", default="info", choices=["debug", "info", "warning", "error"])
    return p


def serve(argv: Sequence[str]) -> int:
    """Run the server until interrupted."""
    import uvicorn

    from videoinfer_server.app import create_app

    args = _serve_parser().parse_args(argv)
    logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    api_key = args.api_key
    if not api_key:
        api_key = secrets.token_urlsafe(24)
        print(f"No --api-key or VIDEOINFER_API_KEY given; this run's API key is: {api_key}", flush=True)
    config = ServerConfig(
        data_dir=Path(args.data_dir),
        api_key=api_key,
        workspace=args.workspace,
        workers=args.workers,
        max_upload_bytes=args.max_upload_bytes,
        retention_days=args.retention_days,
        allow_remote_urls=args.allow_remote_urls,
        poll_min_interval=args.poll_min_interval,
        enable_faults=args.enable_faults,
        min_job_seconds=args.min_job_seconds,
        models=list(args.model),
        load_entry_points=not args.no_entry_points,
        public_url=args.public_url,
        batch_frame_delay_seconds=args.batch_frame_delay,
    )
    app = create_app(config)
    print(f"videoinfer local server on http://{args.host}:{args.port} (data dir {config.data_dir})", flush=True)
    server_config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level=args.log_level, timeout_graceful_shutdown=5
    )
    # uvicorn.Config has configured logging by now; its access log would print each request
    # line with its api_key query parameter.
    install_log_redaction(["uvicorn.access"])  # its request lines carry the api_key query value
    uvicorn.Server(server_config).run()
    return 0


def list_models(argv: Sequence[str]) -> int:
    """Print the models a server started with these options would have."""
    from videoinfer_server.models.registry import build_registry

    p = argparse.ArgumentParser(prog="videoinfer-server models", description="List the available models.")
    p.add_argument("--model", action="append", default=[], metavar="MODULE:CALLABLE")
    p.add_argument("--no-entry-points", action="store_true")
    args = p.parse_args(argv)
    registry = build_registry(args.model, load_entry_points=not args.no_entry_points)
    rows = registry.describe()
    width = max(len(r["model_id"]) for r in rows)
    print(f"{'MODEL_ID'.ljust(width)}  VERSION  {'INFERENCE_TYPE'.ljust(22)}  DESCRIPTION")
    for r in rows:
        print(
            f"{r['model_id'].ljust(width)}  {r['model_version'].ljust(7)}  {r['inference_type'].ljust(22)}  "
            f"{r['description']} [{r['source']}]"
        )
    return 0


def sample(argv: Sequence[str]) -> int:
    """Write a test video of moving rectangles, or of two drawn faces (one turning, one nodding)."""
    from videoinfer_server.sample import make_face_video, make_sample_video

    p = argparse.ArgumentParser(prog="videoinfer-server sample", description="Write a test video (mp4).")
    p.add_argument("out", help="output file, e.g. sample.mp4")
    p.add_argument("--seconds", type=float, default=4.0)
    p.add_argument("--fps", type=float, default=24.0)
    p.add_argument("--width", type=int, default=320)
    p.add_argument("--height", type=int, default=240)
    p.add_argument("--objects", type=int, default=2, help="moving rectangles (default 2)")
    p.add_argument("--faces", action="store_true", help="two drawn faces instead, for the face and gaze models")
    args = p.parse_args(argv)
    size = (args.width, args.height)
    truth = (
        make_face_video(args.out, seconds=args.seconds, fps=args.fps, size=size)
        if args.faces
        else make_sample_video(args.out, seconds=args.seconds, fps=args.fps, size=size, objects=args.objects)
    )
    print(f"wrote {truth.path} ({truth.frame_count} frames at {truth.fps:g} fps, {args.width}x{args.height})")
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``videoinfer-server``."""
    argv = list(sys.argv[1:] if argv is None else argv)
    command = argv[0] if argv and argv[0] in COMMANDS else "serve"
    if argv and argv[0] in COMMANDS:
        argv = argv[1:]
    if command == "models":
        return list_models(argv)
    if command == "sample":
        return sample(argv)
    return serve(argv)


if __name__ == "__main__":
    sys.exit(main())
