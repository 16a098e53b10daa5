"""A minimal asyncio HTTP/1.1 server answering the job status endpoint, for the triggerer benchmark.

Cheap on purpose (no framework, no database), so that the triggers, not the server, are measured:
every job reports ``status`` 1 until the UNIX time ``--done-at``, then 0 with an output URL.
Counts the status requests and the TCP connections it accepted; ``GET /_stats`` answers them.

Usage: ``python benchmarks/_responder.py --port 9000 --done-at 1700000000``
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

STATS = {"requests": 0, "connections": 0, "open": 0, "max_open": 0}


def _answer(path: str, done_at: float) -> bytes:
    if path.startswith("/_stats"):
        return json.dumps(STATS).encode()
    STATS["requests"] += 1
    if time.time() < done_at:
        return b'{"status": 1}'
    return b'{"status": 0, "output_signed_url": "http://127.0.0.1/results/r.json"}'


async def _serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, done_at: float) -> None:
    STATS["connections"] += 1
    STATS["open"] += 1
    STATS["max_open"] = max(STATS["max_open"], STATS["open"])
    try:
        while True:
            head = await reader.readuntil(b"\r\n\r\n")
            path = head.split(b" ", 2)[1].decode()
            body = _answer(path, done_at)
            writer.write(
                b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: "
                + str(len(body)).encode()
                + b"\r\n\r\n"
                + body
            )
            await writer.drain()
    except (asyncio.IncompleteReadError, ConnectionError):
        pass
    finally:
        STATS["open"] -= 1
        writer.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--done-at", type=float, required=True)
    args = parser.parse_args()
    server = await asyncio.start_server(lambda r, w: _serve(r, w, args.done_at), "127.0.0.1", args.port, backlog=4096)
    print("ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main())
