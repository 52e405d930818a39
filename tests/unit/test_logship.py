"""The log shipper (deployments/logship.py) against the Loki stand-in of the tests: lines
pushed once each, by service, and found again with the LogQL subset it answers."""

import json
import time

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


@pytest.mark.parametrize("params", [
    {"query": '{job="x"}', "direction": "forward"},
    {"query": '{job="x"}', "step": "5s"},
    {"query": '{job="x"}', "start": "2026-11-30T00:00:00Z"},
    {"query": '{job="x"}', "end": "1.5"},
])
def test_the_stand_in_refuses_parameters_it_does_not_implement(params):
    with running_fake_loki() as loki:
        assert httpx.get(f"{loki.url}/loki/api/v1/query_range", params=params).status_code == 400
        assert httpx.get(f"{loki.url}/loki/api/v1/query", params={"query": '{job="x"}'}).status_code == 404


def test_the_stand_in_refuses_a_push_it_cannot_read():
    with running_fake_loki() as loki:
        push = f"{loki.url}/loki/api/v1/push"
        assert httpx.post(push, content=b"\x00\x01", headers={"Content-Type": "application/x-protobuf"}).status_code == 415
        assert httpx.post(push, content=b"{}", headers={"Content-Type": "application/json",
                                                        "Content-Encoding": "gzip"}).status_code == 415
        assert httpx.post(push, json={"streams": [{"values": []}]}).status_code == 400


def test_the_limit_counts_lines_in_all_streams_newest_first_within_the_range():
    with running_fake_loki() as loki:
        now = time.time_ns()
        streams = [{"stream": {"job": "j", "service": service},
                    "values": [[str(now - n * 10 + offset), f"{service} {n}"] for n in range(3)]}
                   for offset, service in enumerate(["a", "b"])]
        streams.append({"stream": {"job": "j", "service": "old"}, "values": [[str(now - 2 * 3600 * 10**9), "old"]]})
        assert httpx.post(f"{loki.url}/loki/api/v1/push", json={"streams": streams}).status_code == 204
        answer = httpx.get(f"{loki.url}/loki/api/v1/query_range", params={"query": '{job="j"}', "limit": 3}).json()
        assert {s["stream"]["service"]: [line for _, line in s["values"]] for s in answer["data"]["result"]} == \
            {"b": ["b 0", "b 1"], "a": ["a 0"]}
        assert query(loki, '{job="j"} |= "old"') == {}  # older than the default hour
        assert httpx.get(f"{loki.url}/loki/api/v1/query_range",
                         params={"query": '{job="j"} |= "old"', "start": "0"}).json()["data"]["result"]
