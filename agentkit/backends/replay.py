"""Replay recorded real generations, keyed by a hash of the request.

Unit tests of graph mechanics run on cassettes recorded from the real SmolLM2, so they exercise
real model text (including its failures) in milliseconds. With ``record_from`` set, a miss is
forwarded to the real backend and appended to the cassette; without it, a miss is an error that
names the request, because a silently invented answer would make the test meaningless.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

from agentkit.backends.base import Backend, Generation, GenerationRequest
from agentkit.errors import CassetteMiss, ConfigError


class ReplayBackend:
    provider = "replay"

    def __init__(self, cassette: str | Path, *, record_from: Backend | None = None) -> None:
        self.cassette = Path(cassette)
        self._inner = record_from
        self._recorded: dict[str, Generation] = {}
        self.model = record_from.model if record_from else f"replay:{self.cassette.stem}"
        if self.cassette.exists():
            self._load()
        elif record_from is None:
            raise ConfigError(
                f"cassette {self.cassette} does not exist; record it first by passing record_from=<a real backend>"
            )

    def _load(self) -> None:
        with self.cassette.open(encoding="utf-8") as fh:
            for lineno, line in enumerate(fh, 1):
                if not line.strip():
                    continue
                try:
                    entry = json.loads(line)
                    self._recorded[entry["key"]] = Generation.model_validate(entry["generation"])
                except (json.JSONDecodeError, KeyError, ValueError) as exc:
                    raise ConfigError(f"{self.cassette}:{lineno}: not a cassette entry ({exc}); re-record it") from None

    def __len__(self) -> int:
        return len(self._recorded)

    async def generate(self, request: GenerationRequest) -> Generation:
        key = request.key()
        hit = self._recorded.get(key)
        if hit is not None:
            return hit
        if self._inner is None:
            raise CassetteMiss(
                f"cassette {self.cassette} has no recording for request {key} ({request.summary()}); "
                "re-record with AGENTKIT_RECORD=1 (see tests/README.md) or check that the prompt did not change"
            )
        generation = await self._inner.generate(request)
        self._recorded[key] = generation
        self.cassette.parent.mkdir(parents=True, exist_ok=True)
        entry = {"key": key, "request": request.model_dump(mode="json"), "generation": generation.model_dump(mode="json")}
        with self.cassette.open("a", encoding="utf-8") as fh:
            fh.write(json.dumps(entry, ensure_ascii=False) + "\n")
            fh.flush()
            os.fsync(fh.fileno())
        return generation
