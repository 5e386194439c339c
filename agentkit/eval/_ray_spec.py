"""What an evaluation on Ray is told: how to build the backend in each actor, and which cluster.

A live backend (an HTTP client, a llama.cpp context) cannot travel to another process, so a Ray
evaluation takes a *recipe* instead: ``BackendSpec`` holds what ``make_backend`` takes (kind, model,
base URLs) or a picklable zero-argument factory, and each actor builds its own backend from it.
Nothing here imports ray: the options can be made and checked where ray is not installed.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from agentkit.backends.base import Backend
from agentkit.errors import ConfigError

__all__ = ["RAY_INSTALL_HINT", "BackendSpec", "RayOptions", "require_ray"]

RAY_INSTALL_HINT = "--ray needs the ray package: pip install 'agentkit[ray]'"


class BackendSpec(BaseModel):
    """A backend described, not built: each Ray actor (or a local run) builds one from it.

    ``kind``/``model``/``base_url`` are ``make_backend``'s arguments (several URLs: a pool);
    ``factory``, when given, is called with no arguments instead (it must pickle: a module-level
    function or a ``functools.partial`` of one). ``n_threads`` fixes llama.cpp's threads; left
    None, a Ray evaluation gives each actor the cluster's CPUs divided by the actors."""

    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    kind: str = "llamacpp"
    model: str | None = None
    base_url: str | list[str] | None = None
    n_threads: int | None = Field(None, ge=1)
    #: each server's in-flight limit for the whole run (Ray actors each take their share of it)
    max_in_flight: int | None = Field(None, ge=1)
    #: seconds a request sent to a server may take (None: the backend's default)
    timeout_s: float | None = Field(None, gt=0)
    factory: Callable[[], Any] | None = None

    @property
    def runs_llamacpp(self) -> bool:
        """llama.cpp decodes on this process's CPUs, so co-located actors must share them out."""
        return self.factory is None and self.kind == "llamacpp"

    def build(self, *, n_threads: int | None = None) -> Backend:
        """The backend itself; ``n_threads`` (llama.cpp only) applies unless the spec fixes its own."""
        if self.factory is not None:
            backend = self.factory()
        elif self.runs_llamacpp and (self.n_threads or n_threads):
            if self.base_url is not None:
                raise ConfigError("--base-url is for the vllm and openai backends; llamacpp runs in-process "
                                  "(use --model PATH.gguf)")
            server_only = [flag for flag, value in (("--max-in-flight", self.max_in_flight),
                                                    ("--request-timeout", self.timeout_s)) if value is not None]
            if server_only:  # make_backend refuses them too; built here, they would be silently dropped
                raise ConfigError(f"backend 'llamacpp' runs in-process, so {' and '.join(server_only)} (settings of "
                                  "a server) cannot apply; use --backend vllm or openai, or drop them")
            from agentkit.backends.llamacpp import LlamaCppBackend

            backend = LlamaCppBackend(self.model, n_threads=self.n_threads or n_threads)
        else:
            from agentkit.backends import make_backend

            backend = make_backend(self.kind, model=self.model, base_url=self.base_url,
                                   max_in_flight=self.max_in_flight, timeout_s=self.timeout_s)
        if not isinstance(backend, Backend):
            raise ConfigError(f"BackendSpec.factory returned a {type(backend).__name__!r}, which is not a Backend")
        return backend


class RayOptions(BaseModel):
    """Where and how wide a Ray evaluation runs.

    ``address`` None starts a local Ray bound to 127.0.0.1 (dashboard off) with ``num_cpus`` CPUs
    (default: this machine's) and stops it afterwards; an address ("auto", "HOST:PORT",
    "ray://...") joins that cluster and leaves it running. ``actors`` defaults to the cluster's
    CPUs. ``object_store_mb`` sizes a local Ray's object store: results are small, and the store is
    shared memory taken from the machine."""

    model_config = ConfigDict(frozen=True)

    address: str | None = None
    actors: int | None = Field(None, ge=1)
    num_cpus: int | None = Field(None, ge=1)
    object_store_mb: int = Field(128, ge=80)
    startup_timeout_s: float = Field(600.0, gt=0, description="for every actor to build its backend and graph")
    max_attempts: int = Field(3, ge=1, description="workers an example may kill before it is left unfinished")


def require_ray(*, local: bool = False) -> Any:
    """``import ray``, or the one-line ConfigError saying what to install.

    ``local``: a Ray started on this machine binds 127.0.0.1 (with this switch off, Ray takes the
    loopback address as the node's, so its servers bind there; read when ray is first imported)
    and reports no usage."""
    if local:
        os.environ.setdefault("RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER", "0")
        os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    try:
        import ray
    except ImportError:
        raise ConfigError(RAY_INSTALL_HINT) from None
    return ray
