"""The metrics port (actors/common/metrics.py): values kept in the process, every recording
handed to the installed exporter, the catalog's names; and the README's table of them."""

import re
from pathlib import Path

import pytest

from actors.common import metrics
from actors.common.metrics import CATALOG, Metric, export_to

README = Path(__file__).resolve().parents[2] / "README.md"


class Recorder:
    """An exporter that keeps what it was handed."""

    def __init__(self):
        self.calls = []

    def add(self, metric, labels, amount):
        self.calls.append(("add", metric.name, dict(labels), amount))

    def set(self, metric, labels, value):
        self.calls.append(("set", metric.name, dict(labels), value))

    def observe(self, metric, labels, value):
        self.calls.append(("observe", metric.name, dict(labels), value))


@pytest.fixture
def recorder():
    recorder = Recorder()
    export_to(recorder)
    try:
        yield recorder
    finally:
        export_to(None)


def test_values_are_kept_by_labels_given_by_position_or_name():
    placed = Metric("counter", "orderflow_test_placed", "test", ("currency",))
    placed.labels("PLN").inc()
    placed.labels(currency="PLN").inc(2)
    placed.labels("EUR").inc()
    assert placed.value("PLN") == placed.value(currency="PLN") == 3
    assert placed.samples() == {(("currency", "PLN"),): 3, (("currency", "EUR"),): 1}
    assert placed.value("USD") == 0


def test_each_kind_takes_only_its_own_recordings():
    counter = Metric("counter", "orderflow_test_c", "test")
    gauge = Metric("gauge", "orderflow_test_g", "test")
    histogram = Metric("histogram", "orderflow_test_h", "test", buckets=(1.0,))
    with pytest.raises(ValueError):
        counter.inc(-1)
    with pytest.raises(TypeError):
        counter.set(3)
    with pytest.raises(TypeError):
        gauge.observe(1)
    with pytest.raises(TypeError):
        histogram.inc()
    with pytest.raises(ValueError):
        Metric("counter", "orderflow_test_l", "test", ("a", "b")).labels("only one")


def test_every_recording_reaches_the_exporter_with_its_labels(recorder):
    counter = Metric("counter", "orderflow_test_c", "test", ("kind",))
    gauge = Metric("gauge", "orderflow_test_g", "test")
    histogram = Metric("histogram", "orderflow_test_h", "test", ("stage",), buckets=(1.0,))
    counter.labels("a").inc(2)
    gauge.set(5)
    gauge.inc()
    gauge.dec(3)
    histogram.labels(stage="stored").observe(0.5)
    assert recorder.calls == [
        ("add", "orderflow_test_c", {"kind": "a"}, 2),
        ("set", "orderflow_test_g", {}, 5.0),
        # Ray's gauges only take a value: inc and dec are exported as the gauge's new value.
        ("set", "orderflow_test_g", {}, 6.0),
        ("set", "orderflow_test_g", {}, 3.0),
        ("observe", "orderflow_test_h", {"stage": "stored"}, 0.5),
    ]
    assert gauge.value() == 3 and histogram.value("stored") == 1


def test_without_an_exporter_values_are_only_kept():
    export_to(None)
    counter = Metric("counter", "orderflow_test_c", "test")
    counter.inc()
    assert counter.value() == 1


def test_the_catalog_names_are_prometheus_names_as_ray_exports_them():
    assert len(CATALOG) >= 25
    for metric in CATALOG.values():
        assert re.fullmatch(r"orderflow_[a-z_]+", metric.name), metric.name
        assert metric.exported == f"ray_{metric.name}" + ("_total" if metric.kind == "counter" else "")
        assert not metric.name.endswith("_total"), "Ray adds _total to counters"
        assert metric.help and not metric.help[0].islower()
        assert all(re.fullmatch(r"[a-z_]+", label) for label in metric.label_names)
        # Ray Serve adds these to every replica's metrics; a metric may not use them.
        assert not {"application", "deployment", "replica"} & set(metric.label_names)
        if metric.kind == "histogram":
            assert list(metric.buckets) == sorted(metric.buckets) and metric.buckets[0] > 0


def test_observe_request_counts_and_times_one_answer():
    before = metrics.HTTP_REQUESTS.value("t", "GET", "/x", "200")
    timed = metrics.HTTP_LATENCY.value("t", "GET", "/x")
    metrics.observe_request("t", "GET", "/x", 200, started=0.0)
    assert metrics.HTTP_REQUESTS.value("t", "GET", "/x", "200") == before + 1
    assert metrics.HTTP_LATENCY.value("t", "GET", "/x") == timed + 1


def test_the_readme_table_lists_every_metric_as_exported():
    text = README.read_text()
    chapter = text[text.index("## Monitoring and operations"):]
    listed = set(re.findall(r"^\| `(ray_orderflow_[a-z_]+)`", chapter, re.MULTILINE))
    assert listed == {metric.exported for metric in CATALOG.values()}


def test_the_ray_exporter_makes_one_serve_instrument_per_metric_of_its_kind():
    """Outside a replica Ray's instruments record nothing, but they are made as in one: every
    catalog metric is a valid Ray metric (name, tag keys, boundaries)."""
    from ray.serve import metrics as serve_metrics

    from deployments.metrics import RayExporter

    exporter = RayExporter()
    export_to(exporter)
    try:
        for metric in CATALOG.values():
            series = metric.labels(*("x" for _ in metric.label_names))
            {"counter": series.inc, "gauge": series.set, "histogram": series.observe}[metric.kind](1)
    finally:
        export_to(None)
    kinds = {"counter": serve_metrics.Counter, "gauge": serve_metrics.Gauge, "histogram": serve_metrics.Histogram}
    assert set(exporter._instruments) == {metric.name for metric in CATALOG.values()}
    for metric in CATALOG.values():
        instrument = exporter._instruments[metric.name]
        assert type(instrument) is kinds[metric.kind]
        assert instrument._tag_keys == metric.label_names
        if metric.kind == "histogram":
            assert list(instrument.boundaries) == list(metric.buckets)
