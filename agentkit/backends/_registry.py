"""The backend-kind table: one ``{kind: factory}`` map behind ``make_backend``, the CLI's
``--backend`` choices and their help, so adding an engine is one ``register_backend`` call.

Factories are called as ``factory(model=..., base_url=...)`` with the CLI's --model/--base-url
values (None when not given). The built-in factories import their engine modules only when called:
``import agentkit.backends`` must stay cheap and must not load llama.cpp or vLLM.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from agentkit.backends.base import Backend
from agentkit.errors import ConfigError

if TYPE_CHECKING:
    from agentkit.backends.openai_compat import OpenAICompatibleBackend

BackendFactory = Callable[..., Backend]

_KIND_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")


@dataclass(frozen=True)
class _Kind:
    factory: BackendFactory
    help: str


_KINDS: dict[str, _Kind] = {}


def register_backend(kind: str, factory: BackendFactory, *, help: str, replace: bool = False) -> None:
    """Make ``kind`` buildable by ``make_backend`` (and so selectable as ``--backend KIND``).

    ``help`` is the one line the CLI shows for it. Registering a kind twice is refused unless
    ``replace=True``: a silent overwrite would let an import change which engine a run uses."""
    if not isinstance(kind, str) or not _KIND_NAME.fullmatch(kind):
        raise ConfigError(f"backend kind {kind!r} is not a valid name; use letters, digits, '-', '_' or '.'")
    if not callable(factory):
        raise ConfigError(f"backend kind {kind!r}: factory {factory!r} is not callable")
    if not isinstance(help, str) or not help.strip() or "\n" in help:
        raise ConfigError(f"backend kind {kind!r}: help must be one non-empty line, got {help!r}")
    if kind in _KINDS and not replace:
        raise ConfigError(f"backend kind {kind!r} is already registered; pass replace=True to override it")
    _KINDS[kind] = _Kind(factory, help.strip())


def unregister_backend(kind: str) -> None:
    """Forget a registered kind (a plugin unloading, a test done with its toy backend)."""
    if _KINDS.pop(kind, None) is None:
        raise ConfigError(f"backend kind {kind!r} is not registered; registered: {', '.join(_KINDS)}")


def backend_kinds() -> dict[str, str]:
    """Every registered kind and its help line, in registration order (built-ins first)."""
    return {kind: entry.help for kind, entry in _KINDS.items()}


def make_backend(kind: str = "llamacpp", *, model: str | None = None, base_url: str | Sequence[str] | None = None,
                 max_in_flight: int | None = None, timeout_s: float | None = None) -> Backend:
    """Build a backend by kind, as the CLI's --backend/--model/--base-url options describe it.

    ``vllm`` talks to a vLLM server (default http://127.0.0.1:8000/v1, as ``agentkit serve vllm``
    starts it); ``openai`` to any OpenAI-compatible endpoint (--base-url required, key from
    OPENAI_API_KEY). For both, --model is the served model name, asked from the server if omitted,
    and several URLs make a ``PoolBackend`` over replicas of one model. ``max_in_flight`` is each
    server's limit of sequences at once (its ``--max-num-seqs``); beyond it requests queue in the client.
    ``timeout_s`` is how long a request sent to a server may take before it fails (default 300 s).
    """
    entry = _KINDS.get(kind)
    if entry is None:
        raise ConfigError(f"unknown backend {kind!r}; available: {', '.join(_KINDS)}")
    urls = [base_url] if isinstance(base_url, str) else list(base_url or [])
    if len(urls) > 1:
        backend = _pool(kind, entry, model=model, urls=urls)
    else:
        backend = entry.factory(model=model, base_url=urls[0] if urls else None)
    if max_in_flight is not None:
        for endpoint in _servers(kind, backend, "--max-in-flight limits what a server backend sends to its server"):
            endpoint.max_in_flight = max_in_flight
    if timeout_s is not None:
        for endpoint in _servers(kind, backend, "--request-timeout bounds a request to a server"):
            endpoint.timeout_s = timeout_s
    if not isinstance(backend, Backend):
        raise ConfigError(
            f"the factory of backend {kind!r} returned a {type(backend).__name__!r} value, which is not a Backend "
            "(it needs provider, model and an async generate(request))"
        )
    return backend


def _servers(kind: str, backend: object, what: str) -> list[OpenAICompatibleBackend]:
    """The backend's server endpoints, for a server-only setting (``what`` says which, for the error)."""
    from agentkit.backends.pool import server_endpoints

    endpoints = server_endpoints(backend)
    if not endpoints:
        option = what.split()[0]
        raise ConfigError(f"{what}; backend {kind!r} is not one (use --backend vllm or openai, or drop {option})")
    return endpoints


def _pool(kind: str, entry: _Kind, *, model: str | None, urls: list[str]) -> Backend:
    """One endpoint per URL, made by the kind's own factory, each with no retries of its own."""
    from agentkit.backends.openai_compat import OpenAICompatibleBackend
    from agentkit.backends.pool import PoolBackend

    endpoints = []
    for url in urls:
        endpoint = entry.factory(model=model, base_url=url)
        if not isinstance(endpoint, OpenAICompatibleBackend):
            raise ConfigError(f"--base-url was given {len(urls)} times, but backend {kind!r} is not an HTTP backend "
                              "that can be pooled; pass one --base-url, or use --backend vllm or openai")
        endpoints.append(endpoint)
    return PoolBackend(endpoints)


# -- built-in kinds ---------------------------------------------------------------------------------


def _llamacpp(*, model: str | None, base_url: str | None) -> Backend:
    if base_url is not None:
        raise ConfigError(
            "--base-url is for the vllm and openai backends; llamacpp runs in-process (use --model PATH.gguf)"
        )
    from agentkit.backends.llamacpp import LlamaCppBackend

    return LlamaCppBackend(model)


def _vllm(*, model: str | None, base_url: str | None) -> Backend:
    from agentkit.backends.vllm_server import DEFAULT_URL, VLLMServerBackend

    return VLLMServerBackend(base_url or DEFAULT_URL, model=model)


def _openai(*, model: str | None, base_url: str | None) -> Backend:
    if base_url is None:
        raise ConfigError(
            "--backend openai needs --base-url (e.g. https://api.openai.com/v1 or http://127.0.0.1:8080/v1)"
        )
    from agentkit.backends.openai_compat import OpenAIBackend

    return OpenAIBackend(base_url, model=model)


register_backend("llamacpp", _llamacpp, help="in-process llama.cpp (embedded SmolLM2; --model PATH.gguf)")
register_backend("vllm", _vllm, help="a vLLM server (default http://127.0.0.1:8000/v1, see `agentkit serve vllm`)")
register_backend("openai", _openai, help="any OpenAI-compatible endpoint (--base-url required; key from OPENAI_API_KEY)")
