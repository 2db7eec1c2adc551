"""arthapy against the real engine (native runtime, embedded chain, local
store): what the behaviour suite (tests/behaviour/run.py) does not cover —
Python's own conventions: typed events, asyncio, exceptions, Ctrl-C, the
GIL, fork, a daemon through ``connect``.

Needs ``$ARTHA_NATIVE_RUNTIME`` and, for the daemon test, ``arthai`` at
``$ARTHAI`` (default ``target/debug/arthai``).
"""

import asyncio
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import arthapy

ROOT = Path(__file__).resolve().parents[3]
DATA = ROOT / "tests" / "behaviour" / "fixtures" / "blobs.csv"
ARTHAI = Path(os.environ.get("ARTHAI", ROOT / "target" / "debug" / "arthai"))


@pytest.fixture
def engine(tmp_path):
    with arthapy.Engine.open(tmp_path / "home") as e:
        yield e


def dataset(engine):
    pushed = engine.store.push(DATA)
    return engine.datasets.register(pushed["uri"], name="blobs")["id"]


def test_events_are_typed_and_in_lifecycle_order(engine):
    job = engine.train(dataset=dataset(engine), epochs=2, proof_window=4)
    events = list(job.events())
    phases = [ev.phase for ev in events if isinstance(ev, arthapy.PhaseEvent)]
    assert phases == ["submitted", "accepted", "scheduled", "staging", "running", "proving", "completed"]
    assert any(isinstance(ev, arthapy.LogEvent) and "Epoch 1/2" in ev.text for ev in events)
    steps = [ev.step for ev in events if isinstance(ev, arthapy.ProgressEvent)]
    assert steps and steps == sorted(steps)
    commit = [i for i, ev in enumerate(events) if isinstance(ev, arthapy.ReceiptEvent) and ev.action == "commit"]
    assert commit and commit[0] < len(events) - 1, "the commit receipt comes before completed"
    assert events[-1] == arthapy.events.from_dict({"event": "phase", "phase": "completed", "reason": None})
    assert job.wait() == {"outcome": "completed"}
    status = job.status()
    assert status["phase"] == "completed"
    assert {a["kind"] for a in status["artifacts"]} >= {"checkpoint", "model", "proofs"}
    assert job.proofs()["steps"] == 8


def test_asyncio_variants_and_async_iteration(engine):
    ds = dataset(engine)

    async def main():
        job = await engine.train_async(dataset=ds, epochs=1, proof_window=4)
        phases = [ev.phase async for ev in job.events(progress_only=True) if isinstance(ev, arthapy.PhaseEvent)]
        outcome, status = await asyncio.gather(job.wait_async(), job.status_async())
        held = await engine.train_async(dataset=ds, hold=True)
        cancelled = await held.cancel_async()
        settle = await engine.settle_async()
        return phases, outcome, status, cancelled, settle

    phases, outcome, status, cancelled, settle = asyncio.run(main())
    assert phases[0] == "submitted" and phases[-1] == "completed"
    assert outcome == {"outcome": "completed"}
    assert status["job_id"].startswith("job-")
    assert cancelled["job_id"].startswith("job-")
    assert settle["settled"] == 0


def test_an_awaitable_needs_a_running_loop(engine):
    with pytest.raises(RuntimeError):
        engine.settle_async()


def test_every_error_kind_has_its_class_and_natural_base():
    assert issubclass(arthapy.InvalidInput, ValueError)
    assert issubclass(arthapy.NotFound, LookupError)
    assert issubclass(arthapy.Timeout, TimeoutError)
    for name in arthapy.errors.__all__:
        assert issubclass(getattr(arthapy, name), arthapy.ArthaError)


def test_bad_arguments_raise_the_natural_python_error_naming_the_field(engine, tmp_path):
    ds = dataset(engine)
    with pytest.raises(TypeError, match="epoch"):
        engine.train(dataset=ds, epoch=2)
    with pytest.raises(TypeError, match=r"request\.epochs"):
        engine.train(dataset=ds, epochs="two")
    with pytest.raises(TypeError, match=r"request\.hyper"):
        engine.train(dataset=ds, hyper=["not", "a", "map"])
    with pytest.raises(TypeError):
        engine.store.push(42)
    with pytest.raises(TypeError, match="meta"):
        engine.datasets.register("artha://b3:" + "0" * 64, nmae="typo")
    with pytest.raises(arthapy.InvalidInput) as e:
        engine.store.ls("http://example.invalid/x")
    assert e.value.field == "uri" and e.value.kind == "invalid_input" and not e.value.retryable
    with pytest.raises(ValueError) as e:
        engine.train(dataset=ds, epochs=0)
    assert e.value.field == "hyper.epochs"
    with pytest.raises(arthapy.InvalidInput) as e:
        engine.job("../../etc/passwd")
    assert e.value.field == "id"
    with pytest.raises(arthapy.NotFound):
        engine.models.get("model-" + "0" * 32)
    with pytest.raises(arthapy.AlreadyExists):
        pushed = engine.store.push(DATA)
        engine.store.get(pushed["uri"], tmp_path)
    assert engine.jobs() == [], "refused submissions leave nothing behind"


def test_a_closed_engine_refuses_calls_clearly(tmp_path):
    e = arthapy.Engine.open(tmp_path / "home")
    store = e.store
    e.close()
    e.close()  # idempotent
    with pytest.raises(arthapy.Unavailable, match="closed"):
        e.jobs()
    with pytest.raises(arthapy.Unavailable):
        store.push(DATA)


def long_job(engine):
    """A job that cannot end by itself while the test runs, however fast
    the machine: held (recorded, waiting for release)."""
    return engine.train(dataset=dataset(engine), epochs=1, hold=True)


@pytest.fixture
def sigint_raises():
    """SIGINT raising KeyboardInterrupt, as in a terminal: a test run started
    in the background (`cmd &` in a script) inherits SIGINT ignored."""
    old = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, old)


def test_ctrl_c_interrupts_wait_and_the_job_goes_on(engine, sigint_raises):
    job = long_job(engine)
    timer = threading.Timer(0.5, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    # Should the interrupt be lost, the release ends the wait and the test
    # fails instead of hanging.
    backstop = threading.Timer(20, job.release)
    backstop.start()
    started = time.monotonic()
    try:
        with pytest.raises(KeyboardInterrupt):
            job.wait()
    finally:
        backstop.cancel()
    assert time.monotonic() - started < 5, "the interrupt came through promptly"
    assert job.status()["outcome"] is None, "the job was not cancelled"
    job.release()
    assert job.wait()["outcome"] == "completed", "the job went on after the interrupt"


def test_the_gil_is_released_while_waiting(engine):
    job = long_job(engine)
    done = threading.Event()
    ticks = 0

    def waiter():
        job.wait()
        done.set()

    t = threading.Thread(target=waiter)
    t.start()
    deadline = time.monotonic() + 1.0
    while time.monotonic() < deadline:
        ticks += 1
    job.cancel()
    t.join(timeout=60)
    assert done.is_set()
    assert ticks > 100_000, f"the main thread ran only {ticks} loops while another waited"


@pytest.mark.skipif(not hasattr(os, "fork"), reason="no fork")
def test_after_fork_the_child_opens_its_own_engine(engine, tmp_path):
    engine.jobs()  # the runtime exists before the fork
    pid = os.fork()
    if pid == 0:  # child: exit code says what happened
        code = 0
        try:
            engine.jobs()
            code = 3
        except arthapy.Unavailable as e:
            code = 0 if "fork" in str(e) else 4
        except BaseException:
            code = 5
        if code == 0:
            try:
                with arthapy.Engine.open(tmp_path / "child") as child:
                    code = 0 if child.store.push(DATA)["files"] == 1 else 6
            except BaseException:
                code = 7
        os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert engine.jobs() == []


@pytest.mark.skipif(not ARTHAI.exists(), reason="arthai is not built")
def test_connect_uses_the_daemon_serving_the_home(tmp_path):
    home = tmp_path / "home"
    daemon = subprocess.Popen(
        [str(ARTHAI), "--home", str(home), "--json", "serve", "--addr", "127.0.0.1:0", "--rate-limit", "0"],
        stdout=subprocess.PIPE,
    )
    try:
        for _ in range(300):
            if (home / "serve.json").exists():
                break
            time.sleep(0.1)
        with arthapy.connect(home) as remote:
            assert remote.is_remote
            pushed = remote.store.push(DATA)
            ds = remote.datasets.register(pushed["uri"], name="blobs")
            job = remote.train(dataset=ds["id"], epochs=1, proof_window=4)
            assert job.wait() == {"outcome": "completed"}
            assert [j["job_id"] for j in remote.jobs()] == [job.id]
            with pytest.raises(arthapy.NotFound):
                remote.job("job-" + "0" * 32).status()
        with pytest.raises(arthapy.Conflict, match="arthai serve"):
            arthapy.Engine.open(home)  # the daemon holds the home
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(timeout=30)
    with arthapy.connect(home) as local:
        assert not local.is_remote
        assert len(local.jobs()) == 1


def test_the_stubs_match_the_extension():
    sys.path.insert(0, str(ROOT / "bindings" / "python"))
    import stubgen

    assert stubgen.generate() == stubgen.OUT.read_text(), "run python bindings/python/stubgen.py"
    assert json.loads(json.dumps(arthapy.__all__))


def test_the_native_runtime_is_found_on_path(tmp_path):
    """A user who installed `artha-runtime` on PATH (cargo install) and set
    nothing else: the engine resolves it on its own PATH, since a job starts
    with a minimal PATH of its own."""
    runtime = Path(os.environ["ARTHA_NATIVE_RUNTIME"])
    env = {k: v for k, v in os.environ.items() if k != "ARTHA_NATIVE_RUNTIME"}
    env["PATH"] = f"{runtime.parent}{os.pathsep}{env.get('PATH', '')}"
    script = (
        "import sys, arthapy\n"
        "with arthapy.Engine.open(sys.argv[1]) as e:\n"
        "    d = e.store.push(sys.argv[2])\n"
        "    j = e.train(dataset=d['uri'], epochs=1, proof_window=4)\n"
        "    print(j.wait()['outcome'])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", script, str(tmp_path / "home"), str(DATA)],
        env=env, capture_output=True, text=True, timeout=300,
    )
    assert out.stdout.strip() == "completed", out.stderr
