"""``make test``: the whole suite as two pytest sessions side by side, one per core.

The real-model tests are single-core work: llama.cpp decodes on one thread (half the CPUs, its
default), and the vLLM test server's engine runs one worker thread. Run one after the other, a
2-core machine leaves a core idle for most of the session (measured: 30.4 min in one session). So
the llama.cpp integration tests (with the Ray and packaging tests) run in one session, and the rest
beside them: unit and PostgreSQL first, while the vLLM server and Phoenix start in the background
(``tests/_prewarm.py``), then tests/e2e and tests/vllm. Each shard is an ordinary pytest session
with its own fixtures; they share only the machine and the user cache.

Lines are prefixed with the shard's name as they arrive; the exit status is the first non-zero of
the shards'. With AGENTKIT_RECORD set (re-recording cassettes, which both shards read) the shards
run one after the other. SIGTERM or Ctrl-C reaches both sessions, whose fixtures then stop the
servers they started. Extra options go to both pytest commands (``python -m tests.run_shards -x``);
to run a selection of tests, call pytest itself.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

TESTS = Path(__file__).resolve().parent
ROOT = TESTS.parent
#: the environment variable that tells a session which shard it is (tests/conftest.py deselects the rest)
SHARD_ENV = "AGENTKIT_TEST_SHARD"
SHARDS = ("llamacpp", "others")
#: the llama.cpp integration tests; the Ray tests too, whose actors run llama.cpp (and two local Rays
#: at once would race for ports and /tmp/ray); and the packaging test's pip installs, which even out
#: the shards (measured: 863 s of llama.cpp tests against 1,143 s of everything else)
_LLAMACPP = ("integration", "ray", "test_packaging.py")


def shard_of(path: Path) -> str:
    """The shard a test file under tests/ belongs to."""
    return "llamacpp" if path.resolve().relative_to(TESTS).parts[0] in _LLAMACPP else "others"


PYTEST = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "--durations=15"]


@dataclass
class Shard:
    name: str
    proc: subprocess.Popen[str] | None = None
    seconds: float = 0.0
    last_line: str = ""


def _relay(shard: Shard, lock: threading.Lock) -> None:
    assert shard.proc is not None and shard.proc.stdout is not None
    start = time.monotonic()
    for line in shard.proc.stdout:
        with lock:
            sys.stdout.write(f"[{shard.name}] {line}")
            sys.stdout.flush()
        if line.strip():
            shard.last_line = line.strip()
    shard.proc.wait()
    shard.seconds = time.monotonic() - start


def run(extra: list[str], paths: tuple[str, ...] = ("tests",)) -> int:
    lock = threading.Lock()
    todo = [Shard(name) for name in SHARDS]
    stopping = threading.Event()

    def forward(signum: int, frame: FrameType | None) -> None:
        stopping.set()
        for shard in todo:
            if shard.proc is not None and shard.proc.poll() is None:
                shard.proc.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    # re-recording cassettes (AGENTKIT_RECORD) rewrites files both shards read: one after the other then
    waves = [[shard] for shard in todo] if os.environ.get("AGENTKIT_RECORD") else [todo]
    for wave in waves:
        if stopping.is_set():
            break
        for shard in wave:
            env = {**os.environ, SHARD_ENV: shard.name, "PYTHONUNBUFFERED": "1"}  # unbuffered: lines as they come
            shard.proc = subprocess.Popen([*PYTEST, *extra, *paths], cwd=ROOT, text=True, bufsize=1, env=env,
                                          start_new_session=True,  # a signal reaches each session once, from here
                                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT)  # fmt: skip
        relays = [threading.Thread(target=_relay, args=(shard, lock)) for shard in wave]
        for relay in relays:
            relay.start()
        for relay in relays:
            relay.join()
    codes = [shard.proc.returncode if shard.proc is not None else 1 for shard in todo]
    for shard, code in zip(todo, codes, strict=True):
        sys.stdout.write(f"shard {shard.name}: exit {code} after {shard.seconds:.0f} s: {shard.last_line}\n")
    return next((code for code in codes if code != 0), 0)


if __name__ == "__main__":
    sys.exit(run(sys.argv[1:]))
