"""``agentkit eval cascade --calibrate-on DATASET[:N]``: choose the cascade's threshold on dev rows the
run is never scored on.

- DATASET is the one evaluated: the selected rows are split by ``agentkit.eval.dev_test_split``
  (seed 0; N dev rows, default 30% of them) and the run scores only the rest.
- another DATASET: its first N rows (all of them without N) are the dev rows.

``cascade.calibrate`` runs every tier once per dev row and replays the routing at each candidate
threshold. The objective is the lowest cost per successful task, or with ``--target-accuracy`` the
cheapest threshold reaching that accuracy. The chosen threshold and how it was chosen (dev set,
dev ids count and hash, objective, dev accuracy and cost) become the run's ``threshold`` and
``calibration`` knobs, so run.json records them; the whole curve goes to DIR/calibration.json. On
--resume a calibration stored for the same dev rows is reused instead of rerun.

Each dev row's tier outcomes are appended to DIR/calibration-dev.jsonl as they are made (its first
line names the dev rows and knobs they belong to), so an interrupted calibration resumes from the
rows it finished instead of starting over: on 135M and 2 cores, 100 dev rows take most of an hour.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from agentkit.errors import ConfigError
from agentkit.eval.datasets import Example, dev_test_split
from agentkit.eval.metrics import Prices
from agentkit.eval.runner import MANIFEST_FILE, EvalDataset, select_dataset
from agentkit.graphs import cascade
from agentkit.graphs._calibration import DevRecord
from agentkit.pattern import Pattern

__all__ = ["CALIBRATION_FILE", "DEFAULT_DEV_FRACTION", "DEV_RECORDS_FILE", "DevPlan", "calibrated_knobs",
           "parse_target", "plan", "stored_knobs"]

DEFAULT_DEV_FRACTION = 0.3
CALIBRATION_FILE = "calibration.json"
DEV_RECORDS_FILE = "calibration-dev.jsonl"
_SPLIT_SEED = 0
_LOG = logging.getLogger(__name__)


@dataclass(frozen=True)
class DevPlan:
    """The dev rows, the rows left to score, and how the dev rows were chosen (for run.json)."""

    dev: list[Example]
    test: EvalDataset
    how: dict[str, Any]
    target_accuracy: float | None


def parse_target(text: str) -> tuple[str, int | None]:
    """``NAME`` or ``NAME:N`` (N > 0 rows)."""
    name, sep, count = text.rpartition(":")
    if not sep or not count.isdigit():
        return text, None
    if int(count) < 1:
        raise ConfigError(f"--calibrate-on {text!r}: N must be at least 1 dev row")
    return name, int(count)


def _same_dataset(name: str, data: EvalDataset) -> bool:
    if name.lower() == data.name:
        return True
    return data.sha256 is not None and Path(name).resolve() == Path(data.name)


def _ids_digest(examples: Sequence[Example]) -> str:
    return hashlib.sha256("\n".join(sorted(e.id for e in examples)).encode()).hexdigest()[:16]


def plan(target: str, pattern: Pattern, data: EvalDataset, knobs: Mapping[str, Any],
         target_accuracy: float | None) -> DevPlan:
    """Pick the dev rows before any model loads (every mistake here exits 2 at once)."""
    if pattern.name != cascade.PATTERN.name:
        raise ConfigError(f"--calibrate-on calibrates a cascade's threshold; pattern {pattern.name!r} has none")
    if "threshold" in knobs:
        raise ConfigError("--calibrate-on chooses the threshold: drop -o threshold=...")
    if target_accuracy is not None and not 0.0 <= target_accuracy <= 1.0:
        raise ConfigError(f"--target-accuracy must be in [0, 1], got {target_accuracy}")
    name, count = parse_target(target)
    if _same_dataset(name, data):
        n = len(data.examples)
        if count is not None and count >= n:
            raise ConfigError(f"--calibrate-on {target!r}: {count} dev rows leave no test rows of the {n} selected; "
                              "use a smaller N or a larger --limit")
        fraction = count / n if count is not None else DEFAULT_DEV_FRACTION
        dev, test = dev_test_split(data.examples, fraction, seed=_SPLIT_SEED)
        split = f"dev_test_split of the {n} selected rows (dev_fraction={fraction:.4g}, seed={_SPLIT_SEED})"
        data, name = data.model_copy(update={"examples": test}), data.name
    else:
        dev_data = select_dataset(name, limit=count)
        dev = dev_data.examples
        split = f"the first {len(dev)} rows of {dev_data.name}"
        name = dev_data.name
    if not dev or not data.examples:
        raise ConfigError(f"--calibrate-on {target!r}: {len(dev)} dev and {len(data.examples)} test rows; "
                          "both need at least one")
    how = {"dataset": name, "split": split, "dev_ids": len(dev),
           "dev_ids_sha256": _ids_digest(dev),
           "objective": "target_accuracy" if target_accuracy is not None else "cost_per_success",
           "target_accuracy": target_accuracy}
    return DevPlan(dev=dev, test=data, how=how, target_accuracy=target_accuracy)


def stored_knobs(dev: DevPlan, out: Path, *, resume: bool) -> dict[str, Any] | None:
    """On --resume, ``threshold`` and ``calibration`` from DIR/run.json if made on these same dev rows."""
    manifest = out / MANIFEST_FILE
    if not resume or not manifest.is_file():
        return None
    try:
        knobs = json.loads(manifest.read_text(encoding="utf-8")).get("knobs") or {}
    except (OSError, ValueError, AttributeError):
        return None  # the runner's own check names the unreadable file
    stored = knobs.get("calibration")
    if not isinstance(stored, dict) or any(stored.get(k) != v for k, v in dev.how.items()):
        return None
    return {"threshold": knobs.get("threshold"), "calibration": stored}


def calibrated_knobs(dev: DevPlan, backend: Any, knobs: Mapping[str, Any], *, answer_kind: str,
                     prices: Prices | None, out: Path, resume: bool = False) -> dict[str, Any]:
    """Run ``cascade.calibrate`` on the dev rows, keeping each row's outcomes in DIR/calibration-dev.jsonl
    (and, with ``resume``, reusing the ones kept there); return ``threshold`` and ``calibration`` knobs
    and write the curve to DIR/calibration.json."""
    tiers = cascade.tiers_for(backend, knobs)
    header = _records_header(dev, knobs)
    path = out / DEV_RECORDS_FILE
    done = _kept_records(path, header) if resume else {}
    out.mkdir(parents=True, exist_ok=True)
    fresh = path.with_name(path.name + ".tmp")  # rewritten whole, then swapped in: a torn line must not stay
    fresh.write_text("".join([json.dumps(header, sort_keys=True) + "\n",
                              *(r.model_dump_json() + "\n" for r in done.values())]), encoding="utf-8")
    os.replace(fresh, path)
    with path.open("a", encoding="utf-8") as log:

        def keep(record: DevRecord) -> None:
            log.write(record.model_dump_json() + "\n")
            log.flush()

        result = asyncio.run(cascade.calibrate(tiers, dev.dev, target_accuracy=dev.target_accuracy,
                                               answer_kind=answer_kind, prices=prices,  # type: ignore[arg-type]
                                               done=done, on_record=keep))
    chosen = result.chosen
    how = {**dev.how, "reached_target": result.reached_target, "dev_accuracy": chosen.accuracy,
           "dev_mean_cost": chosen.mean_cost, "dev_cost_per_success": chosen.cost_per_success}
    out.mkdir(parents=True, exist_ok=True)
    (out / CALIBRATION_FILE).write_text(json.dumps({"how": how, **result.model_dump(mode="json")}, indent=2) + "\n",
                                        encoding="utf-8")
    return {"threshold": result.threshold, "calibration": how}


def _records_header(dev: DevPlan, knobs: Mapping[str, Any]) -> dict[str, Any]:
    """What the kept records depend on: the dev rows and every knob that shapes the tiers."""
    shaping = {k: v for k, v in knobs.items() if k not in ("threshold", "calibration")}
    return {"dev_ids_sha256": dev.how["dev_ids_sha256"], "knobs": json.loads(json.dumps(shaping, default=str))}


def _kept_records(path: Path, header: Mapping[str, Any]) -> dict[str, DevRecord]:
    """The records an interrupted calibration kept for these dev rows and knobs; none when the file is
    missing or made for others (then it is started afresh). A torn last line is dropped."""
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except FileNotFoundError:
        return {}
    if not lines or _json_or_none(lines[0]) != json.loads(json.dumps(header, sort_keys=True)):
        if lines:
            _LOG.warning("%s was made for other dev rows or knobs: calibrating from the start", path)
        return {}
    kept: dict[str, DevRecord] = {}
    for number, line in enumerate(lines[1:], start=2):
        try:
            record = DevRecord.model_validate_json(line)
        except ValueError:
            _LOG.warning("%s line %d is not a dev record (a write cut off?): that row is calibrated again",
                         path, number)
            continue
        kept[record.id] = record
    if kept:
        _LOG.info("calibration resumes: %d dev rows kept in %s", len(kept), path)
    return kept


def _json_or_none(line: str) -> Any:
    try:
        return json.loads(line)
    except ValueError:
        return None
