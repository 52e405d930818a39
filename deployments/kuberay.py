"""The Serve applications of deployments/serve_config.yaml as a Ray cluster runs them
(KubeRay's RayService, the Compose Ray head, the cluster launcher's VMs), and the
RayService's `serveConfigV2`, generated from that one file.

    python -m deployments.kuberay            write serveConfigV2 into k8s/kuberay/rayservice.yaml
    python -m deployments.kuberay --check    exit 1 when the RayService differs from serve_config.yaml
    python -m deployments.kuberay --print    the cluster's serve config (what `serve deploy` takes)

`make kuberay` runs the first; the tests run the second.
"""

import argparse
import copy
import re
import sys
from pathlib import Path

import yaml

from deployments.stack import ROOT, SERVE_CONFIG

RAYSERVICE = ROOT / "k8s" / "kuberay" / "rayservice.yaml"
# A Ray node in a cluster takes requests from a gateway on another host or pod.
CLUSTER_HTTP_HOST = "0.0.0.0"
# What a local run may put in an application's runtime_env that means nothing on a cluster:
# settings come from the pods' or containers' environment (ConfigMap, Secret, .env), and the
# code is in the image, not in a working directory of the machine that ran `make run`.
LOCAL_ONLY_RUNTIME_ENV = ("env_vars", "working_dir", "py_modules")

_BLOCK_KEY = re.compile(r"^(?P<indent>[ ]*)serveConfigV2: \|[-+]?\n", re.MULTILINE)


def cluster_serve_config(source: Path = SERVE_CONFIG) -> dict:
    """serve_config.yaml with only what differs on a cluster changed: Serve listens on
    every address, and the local-only runtime_env values are dropped."""
    config = copy.deepcopy(yaml.safe_load(source.read_text()))
    config["http_options"]["host"] = CLUSTER_HTTP_HOST
    for application in config["applications"]:
        runtime_env = application.get("runtime_env")
        if runtime_env is None:
            continue
        for key in LOCAL_ONLY_RUNTIME_ENV:
            runtime_env.pop(key, None)
        if not runtime_env:
            del application["runtime_env"]
    return config


def serve_config_text(source: Path = SERVE_CONFIG) -> str:
    return yaml.safe_dump(cluster_serve_config(source), sort_keys=False, width=100)


def with_serve_config(rayservice_text: str, serve_text: str) -> str:
    """The RayService manifest with its `serveConfigV2: |` block replaced by `serve_text`;
    the rest of the file (its comments included) stays as written."""
    match = _BLOCK_KEY.search(rayservice_text)
    if match is None:
        raise ValueError("the RayService has no `serveConfigV2: |` block")
    body_indent = match["indent"] + "  "
    lines = rayservice_text[match.end():].splitlines(keepends=True)
    taken = 0
    while taken < len(lines) and (lines[taken].startswith(body_indent) or not lines[taken].strip()):
        taken += 1
    while taken and not lines[taken - 1].strip():  # blank lines before the next key stay
        taken -= 1
    body = "".join(body_indent + line if line.strip() else line for line in serve_text.splitlines(keepends=True))
    return rayservice_text[:match.end()] + body + "".join(lines[taken:])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m deployments.kuberay", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    action = parser.add_mutually_exclusive_group()
    action.add_argument("--check", action="store_true", help="only compare; exit 1 when they differ")
    action.add_argument("--print", action="store_true", help="print the cluster's serve config")
    args = parser.parse_args(argv)
    serve_text = serve_config_text()
    if args.print:
        sys.stdout.write(serve_text)
        return 0
    current = RAYSERVICE.read_text()
    wanted = with_serve_config(current, serve_text)
    if wanted == current:
        return 0
    if args.check:
        print(f"{RAYSERVICE.relative_to(ROOT)} is not generated from {SERVE_CONFIG.relative_to(ROOT)}; "
              "run `make kuberay` and commit the result.", file=sys.stderr)
        return 1
    RAYSERVICE.write_text(wanted)
    print(f"wrote serveConfigV2 of {RAYSERVICE.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
