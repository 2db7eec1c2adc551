"""The quickstart flow in Python: push a dataset, register it and a model,
train with a budget, follow the job, read its artifacts and chain
receipts, and settle it on the embedded development chain.

    pip install ./bindings/python
    ARTHA_NATIVE_RUNTIME=target/debug/artha-runtime python examples/python/quickstart.py [HOME]

A fresh temporary home is used when none is given.
"""

import sys
import tempfile
from pathlib import Path

import arthapy


def main(home: Path) -> int:
    data = home.parent / "blobs.csv"
    rows = ["x0,x1,label"] + [
        f"{(i % 2) * 2 - 1 + i / 128:.3f},{i / 128 - i % 2:.3f},{i % 2}" for i in range(128)
    ]
    data.write_text("\n".join(rows) + "\n")

    with arthapy.connect(home) as engine:
        print(f"engine    {'daemon ' + str(home) if engine.is_remote else 'embedded'}")
        pushed = engine.store.push(data)
        print(f"pushed    {pushed['uri']} ({pushed['size']} bytes)")
        ds = engine.datasets.register(pushed["uri"], name="blobs", tags="example")
        model = engine.models.register(pushed["uri"], name="example-mlp", architecture="mlp", dataset=ds["id"])
        print(f"dataset   {ds['id']}\nmodel     {model['id']}")

        estimate = engine.estimate(dataset=ds["id"], epochs=2, proof_window=4, max_duration_secs=120)
        job = engine.train(
            dataset=ds["id"], epochs=2, batch_size=32, learning_rate=0.05,
            proof_window=4, max_duration_secs=120, budget=estimate["cost"],
        )
        print(f"job       {job.id} (budget {estimate['cost']} in escrow)")
        for ev in job.events():
            if isinstance(ev, arthapy.PhaseEvent):
                print(f"  phase   {ev.phase}")
            elif isinstance(ev, arthapy.ReceiptEvent):
                print(f"  chain   {ev.action} in block {ev.block_number}")
        outcome = job.wait()
        if outcome["outcome"] != "completed":
            print(f"job ended: {outcome}", file=sys.stderr)
            return 1

        status = job.status()
        for a in status["artifacts"]:
            print(f"artifact  {a['kind']:<10} {a['name']:<28} {a['uri']}")
        for r in status["receipts"]:
            print(f"receipt   {r['type']:<16} block {r['block']:<4} gas {r['gas']}")
        proofs = job.proofs()
        print(f"proofs    {proofs['steps']} steps, root {proofs['job_root']}")

        period = engine.due()[0]["in_secs"]
        engine.dev_advance(period + 1)
        engine.settle()
        final = job.status()
        print(f"settled   {final['status']}: paid {final['cost']} for {final['gpu_seconds']} GPU-s")
        return 0 if final["settled"] else 1


if __name__ == "__main__":
    if len(sys.argv) > 1:
        sys.exit(main(Path(sys.argv[1]).resolve()))
    with tempfile.TemporaryDirectory() as d:
        sys.exit(main(Path(d) / "home"))
