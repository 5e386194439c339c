"""Checkpointed runs in one process: a failed run continues without redoing finished nodes, a finished
thread is re-read not re-run, state comes back as the pydantic models, and a thread refuses to be
continued by a different run (other state model, input, knobs or backend), naming the difference."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Annotated

import pytest
from pydantic import BaseModel

from agentkit import persistence
from agentkit.errors import ConfigError
from agentkit.graph import END, START, Graph
from agentkit.persistence import RunSettings
from agentkit.reducers import Collect


class Item(BaseModel):
    x: int


class State(BaseModel):
    q: str
    first: Item | None = None
    items: list[Item] = []
    answer: str | None = None


def chain(calls: list[str], *, fail_once: set[str] = frozenset(), state: type[BaseModel] = State,
          delay_s: float = 0.0) -> Graph:
    """first -> second -> third; a node in ``fail_once`` raises the first time it runs."""
    pending = set(fail_once)

    def step(name: str, fn):
        async def run(s):
            calls.append(f"{name}:{s.q}")
            await asyncio.sleep(delay_s)
            if name in pending:
                pending.discard(name)
                raise RuntimeError(f"{name} crashed")
            return fn(s)
        return run

    g = Graph("chain", state)
    g.add_node("first", step("first", lambda s: {"first": Item(x=len(s.q))}), reads=["q"], writes=["first"])
    g.add_node("second", step("second", lambda s: {"items": [s.first, Item(x=2)]}), reads=["first"], writes=["items"])
    g.add_node("third", step("third", lambda s: {"answer": f"{s.q}={sum(i.x for i in s.items)}"}),
               reads=["q", "items"], writes=["answer"])
    g.add_edge(START, "first").add_edge("first", "second").add_edge("second", "third").add_edge("third", END)
    return g


def test_a_failed_run_continues_where_it_stopped_and_a_finished_one_is_reread(tmp_path: Path) -> None:
    calls: list[str] = []
    graph = chain(calls, fail_once={"third"}).compile(checkpointer=persistence.sqlite(tmp_path / "c.db"))
    with pytest.raises(RuntimeError, match="third crashed"):
        graph.invoke({"q": "abc"}, thread_id="t1")
    assert calls == ["first:abc", "second:abc", "third:abc"]
    out = graph.invoke({"q": "abc"}, thread_id="t1")
    assert calls[3:] == ["third:abc"], "finished nodes ran again"
    assert out.answer == "abc=5"
    again = graph.invoke({"q": "abc"}, thread_id="t1")
    assert calls[4:] == [] and again == out
    uninterrupted = chain([]).compile().invoke({"q": "abc"})
    assert out == uninterrupted


def test_state_comes_back_as_the_pydantic_models_from_a_new_store_object(tmp_path: Path) -> None:
    chain([], fail_once={"third"}).compile(checkpointer=persistence.sqlite(tmp_path / "c.db"))
    graph = chain([], fail_once={"third"}).compile(checkpointer=persistence.sqlite(tmp_path / "c.db"))
    with pytest.raises(RuntimeError):
        graph.invoke({"q": "hello"}, thread_id="t")
    fresh = chain([]).compile(checkpointer=persistence.sqlite(tmp_path / "c.db"))
    state = asyncio.run(fresh.aget_state("t"))
    assert isinstance(state, State) and isinstance(state.first, Item) and state.first.x == 5
    assert all(isinstance(i, Item) for i in state.items) and [i.x for i in state.items] == [5, 2]
    assert state.answer is None
    assert asyncio.run(fresh.aget_state("no-such-thread")) is None


class DriftedItem(BaseModel):
    x: str  # was int


class Drifted(BaseModel):
    q: str
    first: DriftedItem | None = None
    items: list[DriftedItem] = []
    answer: str | None = None


class Widened(State):
    note: str = ""


@pytest.mark.parametrize(("state", "field"), [(Drifted, "first"), (Widened, "note")])
def test_a_changed_state_model_is_refused_naming_the_field(tmp_path: Path, state, field) -> None:
    db = persistence.sqlite(tmp_path / "c.db")
    with pytest.raises(RuntimeError):
        chain([], fail_once={"third"}).compile(checkpointer=db).invoke({"q": "abc"}, thread_id="t")
    with pytest.raises(ConfigError, match=rf"field '{field}'.*(changed type|is new)"):
        chain([], state=state).compile(checkpointer=db).invoke({"q": "abc"}, thread_id="t")


def test_stored_values_that_no_longer_validate_name_the_field(tmp_path: Path) -> None:
    """Without a record to compare (a thread written by plain LangGraph use), the values are checked."""
    from agentkit._persistence_run import check_values

    check_values(State, {"q": "a", "first": {"x": 1}}, "t")
    with pytest.raises(ConfigError, match=r"field 'first.x' does not fit Drifted"):
        check_values(Drifted, {"q": "a", "first": {"x": 1}}, "t")
    with pytest.raises(ConfigError, match=r"field 'gone'"):
        check_values(State, {"gone": 1}, "t")


SETTINGS = RunSettings(pattern="chain", knobs={"k": 3}, backend="replay", model="m", base_url="http://a:1/v1")


@pytest.mark.parametrize(("change", "named"), [
    ({"knobs": {"k": 5}}, "knob k=3, this run has 5"),
    ({"model": "other"}, 'model "m", this run has "other"'),
    ({"backend": "openai"}, 'backend "replay"'),
    ({"pattern": "cascade"}, 'pattern "chain"'),
])
def test_continuing_with_other_settings_is_refused_naming_the_difference(tmp_path: Path, change, named) -> None:
    db = persistence.sqlite(tmp_path / "c.db")
    with pytest.raises(RuntimeError):
        chain([], fail_once={"second"}).compile(checkpointer=db).invoke({"q": "a"}, thread_id="t", settings=SETTINGS)
    graph = chain([]).compile(checkpointer=db)
    with pytest.raises(ConfigError, match=named.replace("(", r"\(")):
        graph.invoke({"q": "a"}, thread_id="t", settings=SETTINGS.model_copy(update=change))
    with pytest.raises(ConfigError, match=r"input q=\"a\", this run has \"b\""):
        graph.invoke({"q": "b"}, thread_id="t", settings=SETTINGS)
    moved = SETTINGS.model_copy(update={"base_url": "http://b:2/v1"})  # an endpoint may move
    assert graph.invoke({"q": "a"}, thread_id="t", settings=moved).answer == "a=3"


def test_thread_id_and_checkpointer_go_together(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="thread_id needs a checkpoint store"):
        chain([]).compile().invoke({"q": "a"}, thread_id="t")
    with pytest.raises(ConfigError, match="pass thread_id"):
        chain([]).compile(checkpointer=persistence.sqlite(tmp_path / "c.db")).invoke({"q": "a"})
    with pytest.raises(ConfigError, match="folder .* does not exist"):
        chain([]).compile(checkpointer=persistence.sqlite(tmp_path / "no" / "c.db")).invoke({"q": "a"}, thread_id="t")


def test_any_langgraph_saver_is_accepted(tmp_path: Path) -> None:
    from langgraph.checkpoint.memory import InMemorySaver

    saver = InMemorySaver()
    calls: list[str] = []
    with pytest.raises(RuntimeError):
        chain(calls, fail_once={"second"}).compile(checkpointer=saver).invoke({"q": "ab"}, thread_id="t")
    assert chain(calls).compile(checkpointer=saver).invoke({"q": "ab"}, thread_id="t").answer == "ab=4"
    assert calls == ["first:ab", "second:ab", "second:ab", "third:ab"]


def test_concurrent_threads_share_one_connection_and_do_not_mix(tmp_path: Path) -> None:
    db = persistence.sqlite(tmp_path / "c.db")
    calls: list[str] = []
    graph = chain(calls, delay_s=0.02).compile(checkpointer=db)

    async def both():
        return await asyncio.gather(*(graph.ainvoke({"q": q}, thread_id=q) for q in ("x", "yyyy")))

    x, y = asyncio.run(both())
    assert (x.answer, y.answer) == ("x=3", "yyyy=6")
    assert calls.index("first:yyyy") < calls.index("second:x"), "the two runs did not overlap"
    assert db._shared == {}, "the shared connection was not closed"
    threads = {t.thread_id: t for t in asyncio.run(persistence.list_threads(db))}
    assert set(threads) == {"x", "yyyy"}
    assert asyncio.run(graph.aget_state("x")).answer == "x=3"


def test_threads_list_and_delete(tmp_path: Path) -> None:
    db = persistence.sqlite(tmp_path / "c.db")
    with pytest.raises(RuntimeError):
        chain([], fail_once={"second"}).compile(checkpointer=db).invoke({"q": "a"}, thread_id="stuck", settings=SETTINGS)
    graph = chain([]).compile(checkpointer=db)
    graph.invoke({"q": "b"}, thread_id="done")
    threads = {t.thread_id: t for t in asyncio.run(persistence.list_threads(db))}
    assert threads["stuck"].status == "unfinished" and threads["stuck"].next == ["second"]
    assert threads["stuck"].settings == SETTINGS and threads["stuck"].graph == "chain"
    assert threads["done"].status == "finished" and threads["done"].next == []
    # the status read from the store alone agrees with LangGraph's own view of the graph
    async def lg_next(tid: str) -> tuple[str, ...]:
        async with db.open() as saver:
            snap = await graph.langgraph.copy(update={"checkpointer": saver}).aget_state(
                {"configurable": {"thread_id": tid}})
        return snap.next
    assert asyncio.run(lg_next("stuck")) == ("second",) and asyncio.run(lg_next("done")) == ()
    assert asyncio.run(persistence.delete_thread(db, "stuck")) is True
    assert asyncio.run(persistence.delete_thread(db, "stuck")) is False
    assert [t.thread_id for t in asyncio.run(persistence.list_threads(db))] == ["done"]


def test_a_postgres_dsn_is_printed_without_its_password() -> None:
    cp = persistence.from_target("postgresql://agent:s3cret@127.0.0.1:5432/db")
    assert cp.kind == "postgres" and "s3cret" not in repr(cp) and "agent" in cp.target
    assert persistence.from_target("runs/c.db").kind == "sqlite"


def test_reducer_fields_survive_a_resume(tmp_path: Path) -> None:
    class Fan(BaseModel):
        q: str
        got: Annotated[list[Item], Collect()] = []

    pending = {"b"}

    def branch(name: str, x: int):
        def run(s):
            if name in pending:
                pending.discard(name)
                raise RuntimeError("b crashed")
            return {"got": [Item(x=x)]}
        return run

    g = Graph("fan", Fan)
    g.add_node("a", branch("a", 1), reads=["q"], writes=["got"]).add_node("b", branch("b", 2), reads=["q"], writes=["got"])
    g.add_edge(START, ["a", "b"]).add_edge(["a", "b"], END)
    compiled = g.compile(checkpointer=persistence.sqlite(tmp_path / "c.db"))
    with pytest.raises(RuntimeError):
        compiled.invoke({"q": "x"}, thread_id="t")
    out = compiled.invoke({"q": "x"}, thread_id="t")
    assert sorted(i.x for i in out.got) == [1, 2], "branch a's finished write was lost or doubled"


@pytest.mark.parametrize("pattern", ["mccot", "daslam"])
def test_a_patterns_output_reread_by_a_rebuilt_graph_equals_the_original(tmp_path: Path, pattern: str) -> None:
    """Patterns build their output types per knob set; two builds with the same knobs share them, so
    the output a rebuilt graph re-reads from the checkpoint is == the one first returned."""
    from agentkit.graphs import daslam, mccot
    from tests.unit.test_linc import Scripted

    store = persistence.sqlite(tmp_path / "runs.db")
    reply = '{"subquestions":["What is 6 times 7?"],"rationale":"6*7=42","answer":"42"}'

    def build() -> Graph:
        if pattern == "mccot":
            return mccot.build(Scripted([reply] * 2), k=2, answer_kind="number")
        return daslam.build(Scripted([reply]), answer_kind="number")

    question = {"question": "What is 6 times 7?"}
    first = build().compile(checkpointer=store).invoke(question, thread_id="t")
    again = build().compile(checkpointer=store).invoke(question, thread_id="t")
    assert again == first
