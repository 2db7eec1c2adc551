"""Events lines: what the writer produces is what
`artha_core::protocol::RuntimeEvent::parse_line` accepts, and `parse_line`
here rejects what the Rust one rejects."""
import json
import math

import pytest

from artha_runtime import events
from artha_runtime.errors import WriteFailed
from artha_runtime.events import EventError, EventWriter, parse_line, read_events
from conftest import ROOT

D = "ab" * 32
PROOFS = json.loads((ROOT / "artha-core" / "tests" / "vectors" / "proofs.json").read_text())


def lines(path):
    return path.read_text(encoding="utf-8").splitlines()


def test_writer_emits_every_event_in_the_protocol_shape(tmp_path):
    p = tmp_path / "events.jsonl"
    with EventWriter(p) as w:
        w.log("starting")
        w.step(1, 0, 0.69, bytes.fromhex(D), D, D)
        w.checkpoint("step-00000001.safetensors", 1)
        w.infer(D, bytes(32))
        w.complete(1, D)
        w.error("boom ✗")
    got = lines(p)
    # Byte for byte what serde writes for the same events (tag first,
    # fields in declaration order, compact).
    assert got == [
        '{"event":"log","message":"starting"}',
        f'{{"event":"step","step":1,"epoch":0,"loss":0.69,"grad_digest":"{D}",'
        f'"weight_digest":"{D}","batch_digest":"{D}"}}',
        '{"event":"checkpoint","path":"step-00000001.safetensors","step":1}',
        f'{{"event":"infer","input_digest":"{D}","output_digest":"{"00" * 32}"}}',
        f'{{"event":"complete","steps":1,"final_weights":"{D}"}}',
        '{"event":"error","message":"boom ✗"}',
    ]
    kinds = [e["event"] for e in read_events(p)]
    assert kinds == ["log", "step", "checkpoint", "infer", "complete", "error"]


def test_the_rust_protocol_test_lines():
    # The lines of artha-core/src/protocol.rs's `events_parse_and_reject`.
    line = (f'{{"event":"step","step":1,"epoch":0,"loss":0.5,"grad_digest":"{D}",'
            f'"weight_digest":"{D}","batch_digest":"{D}"}}')
    assert parse_line(1, line)["event"] == "step"
    assert parse_line(2, '{"event":"checkpoint","path":"step-10.safetensors","step":10}')["step"] == 10
    for bad, needle in [
        ("not json", "malformed"),
        ('{"event":"teleport"}', "unknown event"),
        ('{"event":"checkpoint","path":"../x","step":1}', "`..`"),
        (line.replace(D, D.upper()), "hex"),
    ]:
        with pytest.raises(EventError, match=needle) as e:
            parse_line(7, bad)
        assert "line 7" in str(e.value)


@pytest.mark.parametrize("bad, field", [
    ('{"event":"step","step":1,"epoch":0,"loss":NaN,"grad_digest":"%s","weight_digest":"%s","batch_digest":"%s"}' % (D, D, D), "events"),
    ('{"event":"step","step":-1,"epoch":0,"loss":1,"grad_digest":"%s","weight_digest":"%s","batch_digest":"%s"}' % (D, D, D), "step"),
    ('{"event":"step","step":1.0,"epoch":0,"loss":1,"grad_digest":"%s","weight_digest":"%s","batch_digest":"%s"}' % (D, D, D), "step"),
    ('{"event":"step","step":1,"epoch":4294967296,"loss":1,"grad_digest":"%s","weight_digest":"%s","batch_digest":"%s"}' % (D, D, D), "epoch"),
    ('{"event":"step","step":1,"epoch":0,"loss":1,"grad_digest":"%s","weight_digest":"%s"}' % (D, D), "batch_digest"),
    ('{"event":"step","step":1,"epoch":0,"loss":"1","grad_digest":"%s","weight_digest":"%s","batch_digest":"%s"}' % (D, D, D), "loss"),
    ('{"event":"complete","steps":3,"final_weights":"%s","gpu_seconds":1}' % D, "gpu_seconds"),
    ('{"event":"complete","steps":3,"final_weights":"%s"}' % D[:-2], "final_weights"),
    ('{"event":"checkpoint","path":"/abs","step":1}', "path"),
    ('{"event":"checkpoint","path":"a//b","step":1}', "path"),
    ('{"event":"checkpoint","path":"a\\\\b","step":1}', "path"),
    ('{"event":"log","message":3}', "message"),
    ('{"event":"log","message":"a","message":"b"}', "events"),
    ('[1,2]', "events"),
])
def test_rejections_name_the_field(bad, field):
    with pytest.raises(EventError) as e:
        parse_line(3, bad)
    assert e.value.field == field, str(e.value)


def test_long_lines_are_rejected():
    long = '{"event":"log","message":"%s"}' % ("x" * events.MAX_EVENT_LINE)
    with pytest.raises(EventError, match="longer than"):
        parse_line(1, long)


def test_writer_refuses_what_the_engine_would_reject(tmp_path):
    p = tmp_path / "events.jsonl"
    with EventWriter(p) as w:
        for loss in (math.nan, math.inf, -math.inf):
            with pytest.raises(EventError, match="non-finite"):
                w.step(1, 0, loss, D, D, D)
        with pytest.raises(EventError, match="64 lower-case hex"):
            w.step(1, 0, 0.5, D.upper(), D, D)
        with pytest.raises(EventError, match="32 bytes"):
            w.complete(1, b"\0" * 31)
        with pytest.raises(EventError, match="`..`"):
            w.checkpoint("../escape.safetensors", 1)
        with pytest.raises(EventError, match="0..="):
            w.checkpoint("ok.safetensors", -1)
        w.log("x" * (events.MAX_EVENT_LINE * 2))  # clipped, not refused
    assert len(lines(p)) == 1
    assert len(lines(p)[0]) < events.MAX_EVENT_LINE


@pytest.mark.parametrize("rec", PROOFS["step_records"], ids=lambda r: f"step{r['step']}")
def test_core_step_record_vectors_round_trip(tmp_path, rec):
    p = tmp_path / "events.jsonl"
    with EventWriter(p) as w:
        w.step(rec["step"], rec["epoch"], rec["loss"], rec["grad_digest"], rec["weight_digest"],
               rec["batch_digest"])
    (ev,) = read_events(p)
    for k in ("step", "epoch", "loss", "grad_digest", "weight_digest", "batch_digest"):
        assert ev[k] == rec[k]  # the loss survives JSON exactly


def test_steps_are_buffered_other_events_written_through(tmp_path):
    p = tmp_path / "events.jsonl"
    w = EventWriter(p)
    w.step(1, 0, 0.5, D, D, D)
    assert lines(p) == []  # buffered (flushed within 0.2 s by later writes)
    w.checkpoint("a.safetensors", 1)
    assert [json.loads(x)["event"] for x in lines(p)] == ["step", "checkpoint"]
    w.step(2, 0, 0.5, D, D, D)
    w.close()
    assert len(lines(p)) == 3


def test_appends_and_reports_unwritable_paths(tmp_path):
    p = tmp_path / "events.jsonl"
    p.write_text('{"event":"log","message":"before"}\n')
    with events.open_events(str(p)) as w:
        w.log("after")
    assert len(read_events(p)) == 2
    with pytest.raises(WriteFailed, match="cannot open the events file") as e:
        EventWriter(tmp_path / "missing-dir" / "events.jsonl")
    assert e.value.exit_code == 4
