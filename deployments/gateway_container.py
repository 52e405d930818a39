"""The gateway in a container: render gateway/nginx.conf.template with the renderer
`orderflow run` uses (deployments.stack.render_nginx_config), then exec nginx in the
foreground. Where it listens and where Serve is come from the same settings as a local run:
ORDERFLOW_GATEWAY_HOST/PORT, ORDERFLOW_SERVE_HOST/PORT, ORDERFLOW_RUN_DIR (pid file, temp
files); the web clients from ORDERFLOW_WEB_ROOT (the image's build of web/). The image sets
ORDERFLOW_GATEWAY_TLS_PORT empty: TLS ends at the load balancer or ingress in front of it.
The access log goes to stdout and the error log to stderr, where the container runtime
collects them."""

import os
from pathlib import Path

from deployments.stack import StackSettings, find_nginx, render_nginx_config


def render(stack: StackSettings) -> Path:
    config = render_nginx_config(stack, access_log="/dev/stdout json")
    error_log = stack.run_dir / "nginx-error.log"
    error_log.unlink(missing_ok=True)
    error_log.symlink_to("/dev/stderr")
    return config


def main() -> None:
    stack = StackSettings()
    config = render(stack)
    binary = find_nginx(stack.nginx_binary)
    if binary is None:
        raise SystemExit(f"orderflow: nginx ({stack.nginx_binary}) is not installed in this image")
    # -e: the error log before the config is read (the built-in path is not writable here).
    os.execv(binary, [binary, "-e", "stderr", "-c", str(config)])


if __name__ == "__main__":
    main()
