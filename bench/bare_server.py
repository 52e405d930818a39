"""The benchmark baseline: the orders FastAPI app under bare uvicorn, no Serve, no nginx.

It serves the same URLs as the gateway (`/orders/...`) by setting the ASGI root_path the
way Ray Serve does for an application with route_prefix /orders.

    python bench/bare_server.py --port 8199
"""

import argparse

import uvicorn

from deployments.orders import api


def under_prefix(app, prefix: str):
    async def asgi(scope, receive, send):
        if scope["type"] in ("http", "websocket"):
            scope = {**scope, "root_path": prefix}
        await app(scope, receive, send)

    return asgi


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8199)
    args = parser.parse_args()
    uvicorn.run(under_prefix(api, "/orders"), host=args.host, port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
