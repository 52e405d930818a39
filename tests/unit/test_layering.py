"""The layers of DESIGN.md, checked over the source: imports go one way, each service stands
alone, and only deployments/ knows HTTP frameworks and Ray."""

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVICES = ("auth", "orders", "notification", "analytics")
WEB_AND_RAY = ("fastapi", "starlette", "ray", "uvicorn")


def imports_of(package: str) -> dict[str, set[str]]:
    """Every module of `package` (a folder under the root) and the modules it imports."""
    found = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        names = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names |= {alias.name for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def top(name: str, depth: int = 1) -> str:
    return ".".join(name.split(".")[:depth])


@pytest.mark.parametrize("service", SERVICES)
def test_a_service_imports_only_itself_and_actors_common(service):
    for module, names in imports_of(f"actors/{service}").items():
        other = {n for n in names if top(n) == "actors" and top(n, 2) not in (f"actors.{service}", "actors.common")}
        assert not other, f"{module} imports another service or layer: {sorted(other)}"
        assert not {n for n in names if top(n) in ("deployments", "agent")}, f"{module} imports upwards"


@pytest.mark.parametrize("package", ["actors", "agent"])
def test_no_http_framework_or_ray_below_deployments(package):
    for module, names in imports_of(package).items():
        web = {n for n in names if top(n) in WEB_AND_RAY}
        assert not web, f"{module} imports {sorted(web)}; that belongs in deployments/"


def test_actors_common_depends_on_no_service():
    for module, names in imports_of("actors/common").items():
        assert not {n for n in names if top(n) == "actors" and top(n, 2) != "actors.common"}, module


def test_the_agent_uses_only_actors_common():
    for module, names in imports_of("agent").items():
        assert not {n for n in names if top(n) == "actors" and top(n, 2) != "actors.common"}, module
        assert not {n for n in names if top(n) == "deployments"}, module
