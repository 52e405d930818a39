"""A node whose `ray start` fails is started again, with what it left behind killed, and
the error that ends the tries shows what Ray printed (CI keeps no log files)."""

import subprocess

import pytest

from deployments import stack as st
from deployments.cluster import START_TRIES, Cluster, ClusterSettings, _StartFailed, node_settings


@pytest.fixture
def cluster(tmp_path):
    stack = st.StackSettings(run_dir=tmp_path / "run")
    stack.run_dir.mkdir()
    return Cluster(stack, ClusterSettings())


def failing_start(cluster, tag, leftovers, answer_on=None):
    """A start that, until try `answer_on`, writes its output, leaves a process of the
    node behind (as a half-started raylet would) and fails."""
    tries = []

    def start(log):
        tries.append(log)
        if len(tries) == answer_on:
            return "dashboard port"
        log.write_text(f"try {len(tries)}\nValueError: Ray component dashboard is trying to use a port")
        leftovers.append(subprocess.Popen(["sleep", "60"], env=cluster._environment(tag)))
        raise _StartFailed("worker-1")

    return start, tries


def test_a_node_that_fails_to_start_is_started_again_with_its_leftovers_killed(cluster):
    tag, leftovers = node_settings(cluster.stack, "worker-1"), []
    start, tries = failing_start(cluster, tag, leftovers, answer_on=2)
    try:
        assert cluster._retried("worker-1", tag, start) == "dashboard port"
        assert len(tries) == 2
        assert leftovers[0].wait(timeout=10) == -9  # killed before the second try
    finally:
        for process in leftovers:
            process.kill()


def test_a_node_that_never_starts_fails_with_what_ray_printed(cluster):
    tag, leftovers = node_settings(cluster.stack, "worker-1"), []
    start, tries = failing_start(cluster, tag, leftovers)
    try:
        with pytest.raises(st.StackError) as failure:
            cluster._retried("worker-1", tag, start)
        assert len(tries) == START_TRIES
        assert f"`ray start` of the worker-1 failed {START_TRIES} times" in str(failure.value)
        assert f"try {START_TRIES}" in str(failure.value)
        assert "is trying to use a port" in str(failure.value)
        assert st.stack_processes(tag) == []
    finally:
        for process in leftovers:
            process.kill()
