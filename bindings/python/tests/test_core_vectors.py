"""arthapy.core against the cross-language vectors of artha-core
(artha-core/tests/vectors/proofs.json, also checked by Rust, Solidity,
artha-wasm and the runtime helper) and the credential fixture of
artha-wasm (bindings/wasm/tests/fixtures/credentials.json)."""

import json
from pathlib import Path

import pytest

import arthapy
from arthapy import core

ROOT = Path(__file__).resolve().parents[3]
V = json.loads((ROOT / "artha-core" / "tests" / "vectors" / "proofs.json").read_text())
CREDS = json.loads((ROOT / "bindings" / "wasm" / "tests" / "fixtures" / "credentials.json").read_text())


def test_cids_and_tensor_digests():
    for c in V["cids"]:
        assert core.cid(bytes.fromhex(c["data_hex"])) == c["cid"]
    for t in V["tensors"]:
        assert core.tensor_digest(bytes.fromhex(t["data_hex"]), t["dtype"], t["shape"]) == t["digest"]


@pytest.mark.parametrize("kind", ["step", "infer", "complete"])
def test_record_encodings_and_leaves(kind):
    records = V[f"{kind}_records"]
    assert records
    for r in records:
        fields = {k: v for k, v in r.items() if k not in ("encoding", "leaf")}
        assert core.record_leaf(kind, fields) == {"encoding": r["encoding"], "leaf": r["leaf"]}


def test_merkle_trees_and_proofs():
    for m in V["merkle"]:
        assert core.merkle_root(m["leaves"]) == m["root"]
        for p in m["proofs"]:
            proof = {**p, "leaf_count": len(m["leaves"])}
            assert core.merkle_proof(m["leaves"], p["index"]) == proof
            assert core.verify_merkle_proof(m["leaves"][p["index"]], proof, m["root"])
            if len(m["leaves"]) > 1:
                other = m["leaves"][(p["index"] + 1) % len(m["leaves"])]
                assert not core.verify_merkle_proof(other, proof, m["root"])


def test_job_trees_and_window_claims():
    for t in V["job_trees"]:
        tree = core.job_tree(t["step_leaves"], t["window"])
        assert tree == {"job_root": t["job_root"], "window_roots": t["window_roots"]}
        w = t["window"]
        for i, root in enumerate(t["window_roots"]):
            proof = core.merkle_proof(t["window_roots"], i)
            leaves = t["step_leaves"][i * w : (i + 1) * w]
            assert core.verify_window(t["job_root"], i, leaves, proof) == root
        with pytest.raises(arthapy.Corrupted):
            core.verify_window(t["job_root"], 0, t["step_leaves"][1 : w + 1], core.merkle_proof(t["window_roots"], 0))
        with pytest.raises(arthapy.InvalidInput) as e:
            core.verify_window(t["job_root"], 1, t["step_leaves"][:w], core.merkle_proof(t["window_roots"], 0))
        assert e.value.field == "window_proof.index"


def test_money_is_exact():
    for m in V["money"]:
        assert core.cost(m["gpu_seconds"], m["rate_wei"]) == m["cost_wei"]


def test_specs_are_validated_with_every_field_named():
    good = {"kind": "train", "runtime": {"native": "mlp"}, "budget": "1 ARTH", "dataset": "dataset-" + "0" * 32}
    problems = core.validate_spec(good)
    assert problems == [], problems
    bad = {**good, "hyper": {"epochs": 0, "learning_rate": -1.0}, "resources": {"gpus": 99}}
    fields = {p["field"] for p in core.validate_spec(bad)}
    assert {"hyper.epochs", "hyper.learning_rate", "resources.gpus"} <= fields
    with pytest.raises(TypeError, match="spec"):
        core.validate_spec({**good, "surprise": 1})


def test_credentials():
    claims = core.verify_credential(CREDS["valid"], CREDS["now"])
    assert claims["issuer"].startswith("did:key:z6Mk") and claims["budget_cap"] == "2.5 ARTH"
    for name in ("forged", "altered"):
        with pytest.raises(arthapy.PermissionDenied) as e:
            core.verify_credential(CREDS[name], CREDS["now"])
        assert e.value.field == "credential.signature"
    with pytest.raises(arthapy.PermissionDenied) as e:
        core.verify_credential(CREDS["valid"], CREDS["valid"]["credential"]["expires_at"])
    assert e.value.field == "credential.expires_at"
    with pytest.raises(TypeError):
        core.verify_credential({"credential": {}}, 0)


def test_bad_hashes_name_their_place():
    with pytest.raises(arthapy.InvalidInput) as e:
        core.merkle_root(["0x" + "00" * 32, "nope"])
    assert e.value.field == "leaves[1]"
    with pytest.raises(ValueError):
        core.record_leaf("weights", {})


def test_a_step_log_is_checked_against_a_commitment_and_the_audit_draw():
    # The vectors' step records, renumbered 1…n, in windows of 2.
    recs = []
    for i, r in enumerate(V["step_records"]):
        fields = {k: v for k, v in r.items() if k not in ("encoding", "leaf")}
        recs.append({**fields, "step": i + 1})
    encoded = [core.record_leaf("step", r) for r in recs]
    log = b"".join(bytes.fromhex(e["encoding"][2:]) for e in encoded)
    root = core.job_tree([e["leaf"] for e in encoded], 2)["job_root"]
    back = core.verify_step_log(log, 2, root, len(recs))
    assert [r["step"] for r in back] == list(range(1, len(recs) + 1))
    flipped = bytearray(log)
    flipped[30] ^= 1
    with pytest.raises(arthapy.Corrupted):
        core.verify_step_log(bytes(flipped), 2, root, len(recs))
    with pytest.raises(arthapy.InvalidInput) as e:
        core.verify_step_log(log[1:], 2, root, len(recs))
    assert e.value.field == "step_log"

    job = "job-" + "ab" * 16
    seed = "0x" + "11" * 32
    drawn = core.audit_windows(seed, job, 100, 8)
    assert len(set(drawn)) == 8 and all(0 <= w < 100 for w in drawn)
    assert core.audit_windows(seed, job, 100, 8) == drawn
    assert sorted(core.audit_windows(seed, job, 3, 9)) == [0, 1, 2]
    with pytest.raises(arthapy.InvalidInput) as e:
        core.audit_windows(seed, "job-zz", 10, 1)
    assert e.value.field == "job_id"
