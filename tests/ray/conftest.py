"""One real local Ray for the whole session: 2 CPUs, a 100 MB object store, 127.0.0.1 only, no
dashboard; started through agentkit's own ``connect`` (what ``--ray`` does) and stopped at the end."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from agentkit.eval._ray_runner import connect
from agentkit.eval._ray_spec import RayOptions

OPTIONS = RayOptions(num_cpus=2, object_store_mb=100)


@pytest.fixture(scope="session")
def ray_cluster() -> Iterator[Any]:
    ray, owned = connect(OPTIONS)
    assert owned, "a Ray was already running in this test process"
    try:
        yield ray
    finally:
        ray.shutdown()
    assert not ray.is_initialized()


@pytest.fixture(scope="session")
def ray_address(ray_cluster: Any) -> str:
    """The session cluster's GCS address, for --ray-address."""
    return ray_cluster.get_runtime_context().gcs_address
