"""ray-cluster.yaml (Ray's cluster launcher on VMs) against Ray's own schema
(ray/autoscaler/ray-schema.json of the pinned wheel) and Ray's own config preparation."""

import json
from pathlib import Path

import jsonschema
import pytest
import ray
import yaml
from ray.autoscaler._private.util import prepare_config, validate_config

from deployments.stack import ROOT

SCHEMA = json.loads((Path(ray.__file__).parent / "autoscaler" / "ray-schema.json").read_text())


@pytest.fixture
def cluster() -> dict:
    return yaml.safe_load((ROOT / "ray-cluster.yaml").read_text())


def test_ray_cluster_yaml_passes_rays_schema(cluster):
    jsonschema.validate(cluster, SCHEMA)
    validate_config(prepare_config(cluster))  # what `ray up` does before it starts anything


def test_the_schema_refuses_a_misspelt_field(cluster):
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(cluster | {"setup_comands": []}, SCHEMA)


def test_the_vms_install_the_pinned_package_and_start_the_same_applications(cluster):
    setup = " ".join(cluster["setup_commands"])
    assert "-c ~/orderflow/constraints.txt ~/orderflow" in setup
    head = " ".join(cluster["head_start_ray_commands"])
    assert "python -m deployments.kuberay --print" in head and "serve deploy" in head
    for commands in (cluster["head_start_ray_commands"], cluster["worker_start_ray_commands"]):
        (start,) = [c for c in commands if " start " in c]
        assert start.startswith("set -a && . ~/orderflow/.env && set +a"), start
    assert cluster["provider"]["type"] == "local"
