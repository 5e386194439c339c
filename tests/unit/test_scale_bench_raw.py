"""bench/scale.py --vs-raw: the raw LangGraph + httpx floor really serves every example through the
fake endpoints, each request posted once, and measures the client's CPU over the serving window."""

from __future__ import annotations

import argparse

from tests.helpers import bench_module


def test_the_raw_floor_posts_one_request_per_example_across_the_endpoints() -> None:
    scale = bench_module("scale")
    args = argparse.Namespace(capacity=2, latency=0.05, in_flight=None, examples=12)
    row = scale.run_raw(2, args)
    assert row["requests"] == 12  # one chat completion per example, none lost or repeated
    assert row["by_endpoint"] == [6, 6]  # round-robin, as the pool spreads the eval's requests
    assert row["examples_per_s"] > 0
    assert row["client_cpu_ms_per_request"] > 0
