"""The benchmark baseline: the orders and auth FastAPI apps under one bare uvicorn, no
Serve, no nginx.

It serves the same URLs as the gateway (`/orders/...`, `/auth/...`) by setting the ASGI
root_path the way Ray Serve does for an application with a route prefix. Customer login by
order number needs Serve (a handle to the orders app) and is not served here.

    python bench/bare_server.py --port 8199
"""

import argparse
import contextlib

import uvicorn

from deployments.auth import api as auth_api
from deployments.orders import api as orders_api

APPS = {"/orders": orders_api, "/auth": auth_api}


async def lifespan(receive, send) -> None:
    """Start every app's lifespan (pools, keys, verifier) and close them on shutdown."""
    async with contextlib.AsyncExitStack() as stack:
        await receive()  # lifespan.startup
        try:
            for app in APPS.values():
                await stack.enter_async_context(app.router.lifespan_context(app))
        except Exception as exc:
            await send({"type": "lifespan.startup.failed", "message": repr(exc)})
            raise
        await send({"type": "lifespan.startup.complete"})
        await receive()  # lifespan.shutdown
    await send({"type": "lifespan.shutdown.complete"})


async def gateway(scope, receive, send):
    if scope["type"] == "lifespan":
        return await lifespan(receive, send)
    for prefix, app in APPS.items():
        if scope["path"] == prefix or scope["path"].startswith(prefix + "/"):
            return await app({**scope, "root_path": prefix}, receive, send)
    await send({"type": "http.response.start", "status": 404, "headers": []})
    await send({"type": "http.response.body", "body": b""})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8199)
    args = parser.parse_args()
    uvicorn.run(gateway, host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
