"""`python -m deployments.healthcheck URL...`: exit 0 when every URL answers 200, else 1 with
the first failure on stderr. The container image has neither curl nor wget; its HEALTHCHECK
and the Compose healthchecks use this."""

import sys
import urllib.error
import urllib.request

# The local Ray node's raylet, through its dashboard agent (public even with token auth).
RAYLET = "http://127.0.0.1:52365/api/local_raylet_healthz"


def failure(url: str, timeout_s: float = 3) -> str | None:
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            return None if response.status == 200 else f"{url}: {response.status}"
    except (urllib.error.URLError, OSError) as exc:
        return f"{url}: {exc}"


def main(urls: list[str]) -> int:
    for url in urls or [RAYLET]:
        if problem := failure(url):
            print(problem, file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
