"""The behaviour suite (tests/behaviour/scenarios.json, format in
docs/BINDINGS.md) against arthapy: every step the Rust Connection runs, the
Python binding must answer the same way.

    python tests/behaviour/run.py [SCENARIO]

Needs the native runtime (``$ARTHA_NATIVE_RUNTIME``). Exits non-zero on the
first difference, naming the scenario, step and path.
"""

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any, Dict

import arthapy

ROOT = Path(__file__).resolve().parents[2]
FIXTURES = ROOT / "tests" / "behaviour" / "fixtures"


def resolve(v: Any, saved: Dict[str, Any], tmp: Path) -> Any:
    if isinstance(v, str) and v.startswith("$"):
        name, *path = v[1:].split(".")
        cur = saved[name]
        for p in path:
            cur = cur.get(p) if isinstance(cur, dict) else None
        return cur
    if isinstance(v, str) and v.startswith("@fixture/"):
        return str(FIXTURES / v[len("@fixture/") :])
    if isinstance(v, str) and v.startswith("@tmp/"):
        return str(tmp / v[len("@tmp/") :])
    if isinstance(v, list):
        return [resolve(x, saved, tmp) for x in v]
    if isinstance(v, dict):
        return {k: resolve(x, saved, tmp) for k, x in v.items()}
    return v


def contains(got: Any, want: Any, path: str = "result") -> None:
    """Raises AssertionError at the first place ``got`` lacks ``want``."""

    def fail() -> None:
        raise AssertionError(f"at {path}: want {json.dumps(want)}, got {json.dumps(got, default=str)}")

    if isinstance(want, dict) and "$any" in want:
        if got is None:
            fail()
    elif isinstance(want, dict) and "$len" in want:
        if not isinstance(got, (list, dict, str)):
            fail()
        contains(len(got), want["$len"], path + ".$len")
    elif isinstance(want, dict) and "$gt" in want:
        if isinstance(got, bool) or not isinstance(got, (int, float)) or not got > want["$gt"]:
            fail()
    elif isinstance(want, dict) and "$has" in want:
        if not isinstance(got, list):
            fail()
        for x in got:
            try:
                contains(x, want["$has"], path)
                return
            except AssertionError:
                pass
        fail()
    elif isinstance(want, dict):
        if not isinstance(got, dict):
            fail()
        for k, w in want.items():
            contains(got.get(k), w, f"{path}.{k}")
    elif isinstance(want, list):
        if not isinstance(got, list) or len(got) != len(want):
            fail()
        for i, (g, w) in enumerate(zip(got, want)):
            contains(g, w, f"{path}[{i}]")
    elif isinstance(want, (int, float)) and not isinstance(want, bool):
        if isinstance(got, bool) or not isinstance(got, (int, float)) or got != want:
            fail()
    elif got != want:
        fail()


def call(engine: "arthapy.Engine", op: str, a: Dict[str, Any]) -> Any:
    """One operation of docs/BINDINGS.md by its Python name."""
    a = dict(a)
    if op.startswith("job."):
        job = engine.job(a.pop("job"))
        method = op[len("job.") :]
        if method == "events":
            return [ev.to_dict() for ev in job.events(**a)]
        return getattr(job, method)(**a)
    if op in ("train", "infer"):
        job = getattr(engine, op)(**a)
        return {"id": job.id}
    if op == "submit":
        return {"id": engine.submit(**a).id}
    if op.startswith(("store.", "datasets.", "models.")):
        part, method = op.split(".")
        target = getattr(getattr(engine, part), method)
        if method == "register":
            return target(a.pop("uri"), **a)
        return target(**a)
    return getattr(engine, op)(**a)


def run(only: str = "") -> int:
    suite = json.loads((ROOT / "tests" / "behaviour" / "scenarios.json").read_text())
    ran = 0
    for sc in suite["scenarios"]:
        if only and sc["name"] != only:
            continue
        with tempfile.TemporaryDirectory() as d:
            tmp = Path(d)
            saved: Dict[str, Any] = {}
            with arthapy.Engine.open(tmp / "home") as engine:
                for i, step in enumerate(sc["steps"]):
                    op = step["call"]
                    at = f"{sc['name']} step {i} ({op})"
                    args = resolve(step.get("args", {}), saved, tmp)
                    expect = step.get("expect", {})
                    try:
                        got = call(engine, op, args)
                    except arthapy.ArthaError as e:
                        want = expect.get("error")
                        if want is None:
                            raise AssertionError(f"{at}: {e}") from e
                        if e.kind != want["kind"]:
                            raise AssertionError(f"{at}: want {want['kind']}, got {e}") from e
                        if "field" in want and e.field != want["field"]:
                            raise AssertionError(f"{at}: want field {want['field']}, got {e.field}: {e}") from e
                        continue
                    if "error" in expect:
                        raise AssertionError(f"{at}: want error {expect['error']}, got {got}")
                    if "ok" in expect:
                        try:
                            contains(got, resolve(expect["ok"], saved, tmp))
                        except AssertionError as e:
                            raise AssertionError(f"{at}: {e}") from None
                    if "save" in step:
                        saved[step["save"]] = got
        ran += 1
        print(f"ok   {sc['name']}")
    if ran == 0:
        print(f"no scenario named {only!r}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    if not os.environ.get("ARTHA_NATIVE_RUNTIME"):
        print("set ARTHA_NATIVE_RUNTIME to the artha-runtime program", file=sys.stderr)
        sys.exit(2)
    sys.exit(run(sys.argv[1] if len(sys.argv) > 1 else ""))
