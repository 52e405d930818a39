"""The log shipper (deployments/logship.py) against the Loki stand-in of the tests: lines
pushed once each, by service, and found again with the LogQL subset it answers."""

import json

import httpx
import pytest

from deployments.logship import LogShipper
from tests.fake_loki import BadQuery, parse_query, running_fake_loki


def query(loki, logql: str) -> dict[str, list[str]]:
    answer = httpx.get(f"{loki.url}/loki/api/v1/query_range", params={"query": logql}).json()
    return {s["stream"]["service"]: [line for _, line in s["values"]] for s in answer["data"]["result"]}


def test_each_complete_line_is_shipped_once_labelled_by_its_service(tmp_path):
    access, worker = tmp_path / "nginx-access.log", tmp_path / "worker-1.err"
    access.write_text(json.dumps({"service": "gateway", "request_id": "r1"}) + "\n")
    worker.write_text(json.dumps({"service": "orders", "request_id": "r1"}) + "\nray says hi r1\n"
                      + json.dumps({"service": "orders", "request_id": "r2"}))  # the last line is not complete yet
    with running_fake_loki() as loki:
        shipper = LogShipper(loki.url, lambda: [access, worker, tmp_path / "not-yet.log"])
        assert shipper.ship_once() == 3
        assert shipper.ship_once() == 0
        with worker.open("a") as file:
            file.write("\n")
        assert shipper.ship_once() == 1
        assert {k: len(v) for k, v in query(loki, '{job="orderflow"} |= "r1"').items()} == \
            {"gateway": 1, "orders": 1, "ray": 1}
        assert list(query(loki, '{job="orderflow", service="orders"} |= "r2"')) == ["orders"]
        assert query(loki, '{job="orderflow"} |= "r1" |= "hi"') == {"ray": ["ray says hi r1"]}
        assert query(loki, '{job="other"}') == {}


@pytest.mark.parametrize("logql", ['{job=~"x"}', '{job="x"} != "y"', 'job="x"', '{job="x"} | json'])
def test_a_query_outside_the_subset_is_refused(logql):
    with pytest.raises(BadQuery):
        parse_query(logql)
    with running_fake_loki() as loki:
        assert httpx.get(f"{loki.url}/loki/api/v1/query_range", params={"query": logql}).status_code == 400
