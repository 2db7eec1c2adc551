"""The torch image runs runtimes/torch/train.py under Docker the way the
engine's Docker executor runs a job (network none, read-only root and
/model, /data; writable /checkpoints, /artha; user 65534; no capabilities)
and reports events the engine accepts.

Needs `ARTHA_TORCH_IMAGE` (runtimes/torch/test.sh builds the image and sets
it); without it these tests are skipped, except under CI=true, where they
fail. With `ARTHA_NATIVE_RUNTIME` (the native `artha-runtime` binary, which
test.sh builds) they also check that the two runtimes agree.
"""

import json
import os
import shutil
import subprocess

import numpy as np
import pytest

from artha_runtime import checkpoint, data, lm, rng
from artha_runtime.digest import SAMPLE_SIZE, is_full_step, named_digest, named_digest_at, tensor_digest
from artha_runtime.events import read_events

IMAGE = os.environ.get("ARTHA_TORCH_IMAGE", "")
NATIVE = os.environ.get("ARTHA_NATIVE_RUNTIME", "")
CI = os.environ.get("CI") == "true"

#: The job of the engine's end-to-end torch test: 256 rows, 2 epochs of 8.
JOB = {"EPOCHS": "2", "BATCH_SIZE": "32", "LEARNING_RATE": "0.05", "ARTHA_SEED": "3",
       "ARTHA_PROOF_WINDOW": "8", "ARTHA_JOB_ID": "image-test"}
MODEL_CONFIG = {"kind": "mlp", "task": "classify", "hidden": [16], "classes": 2}


def required(var, value):
    if not value:
        if CI:
            pytest.fail(f"{var} is not set: under CI this test must run (runtimes/torch/test.sh sets it)")
        pytest.skip(f"{var} not set (run runtimes/torch/test.sh)")
    return value


@pytest.fixture(scope="module")
def image():
    return required("ARTHA_TORCH_IMAGE", IMAGE)


def blobs_csv(rows=256, seed=21):
    """Two Gaussian blobs in 4 dimensions, labels alternating 0/1."""
    r = np.random.default_rng(seed)
    lines = ["x0,x1,x2,x3,label"]
    for i in range(rows):
        label = i % 2
        x = r.standard_normal(4) + 1.5 * label
        lines.append(",".join(f"{v:.6f}" for v in x) + f",{label}")
    return "\n".join(lines) + "\n"


def job_dirs(root, csv=None):
    dirs = {name: root / name for name in ("model", "data", "checkpoints", "artha")}
    for name, d in dirs.items():
        d.mkdir(parents=True, exist_ok=True)
        d.chmod(0o777 if name in ("checkpoints", "artha") else 0o755)
    (dirs["model"] / "config.json").write_text(json.dumps(MODEL_CONFIG))
    (dirs["data"] / "train.csv").write_text(blobs_csv() if csv is None else csv)
    return dirs


def run_container(image, dirs, env=None, *, ro_checkpoints=False, entry=None, args=()):
    cmd = ["docker", "run", "--rm", "--network", "none", "--read-only",
           "--tmpfs", "/tmp:rw,noexec,nosuid,size=64m", "--cap-drop", "ALL",
           "--security-opt", "no-new-privileges", "--user", "65534:65534", "--memory", "2g",
           "-v", f"{dirs['model']}:/model:ro", "-v", f"{dirs['data']}:/data:ro",
           "-v", f"{dirs['checkpoints']}:/checkpoints:{'ro' if ro_checkpoints else 'rw'}",
           "-v", f"{dirs['artha']}:/artha:rw", "-e", "ARTHA_EVENTS=/artha/events.jsonl"]
    for k, v in {**JOB, **(env or {})}.items():
        cmd += ["-e", f"{k}={v}"]
    if entry:
        cmd += ["--entrypoint", entry]
    cmd += [image, *args]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def events_of(dirs):
    return read_events(dirs["artha"] / "events.jsonl")


def steps_of(evs):
    return [e for e in evs if e["event"] == "step"]


@pytest.fixture(scope="module")
def first_run(image, tmp_path_factory):
    dirs = job_dirs(tmp_path_factory.mktemp("run1"))
    proc = run_container(image, dirs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dirs, proc


def test_trains_and_reports_valid_events(first_run):
    dirs, proc = first_run
    evs = events_of(dirs)  # every line checked as the engine checks it
    kinds = [e["event"] for e in evs]
    assert kinds == ["log"] + ["step"] * 8 + ["checkpoint"] + ["step"] * 8 + \
        ["checkpoint", "checkpoint", "log", "complete"], kinds
    steps = steps_of(evs)
    assert [s["step"] for s in steps] == list(range(1, 17))
    assert [s["epoch"] for s in steps] == [0] * 8 + [1] * 8
    cks = [e for e in evs if e["event"] == "checkpoint"]
    assert [(c["path"], c["step"]) for c in cks] == [
        ("step-00000008.safetensors", 8), ("step-00000016.safetensors", 16),
        ("final.safetensors", 16)]
    done = evs[-1]
    assert done["steps"] == 16
    # The checkpoints are real: they load (digests verified) and the final
    # weights are those of the last step and of the complete event.
    final = checkpoint.load(str(dirs["checkpoints"] / "final.safetensors"))
    assert final["weights_digest"] == done["final_weights"] == steps[-1]["weight_digest"]
    assert named_digest(final["params"]) == done["final_weights"]
    mid = checkpoint.load(str(dirs["checkpoints"] / "step-00000008.safetensors"))
    assert mid["weights_digest"] == steps[7]["weight_digest"]
    assert mid["train"]["step"] == 8 and mid["model"]["hidden"] == [16]
    # Step 1's batch is rows 0..32 of epoch 0's permutation of the data.
    ds = data.load_train(str(dirs["data"] / "train.csv"), "classify")
    rows = rng.permutation(3, 0, ds.rows)[:32]
    assert steps[0]["batch_digest"] == named_digest_at(
        [("x", ds.x[rows]), ("y", ds.y[rows])], 3, 1, full=False).hex()
    # (Step 1's batch, 32 × 12 inputs, is sampled: more than S = 64
    # elements; its labels are hashed whole.)
    # It learns: blobs 1.5σ apart are mostly separable.
    losses = [s["loss"] for s in steps]
    assert np.mean(losses[-4:]) < 0.75 * np.mean(losses[:4]), losses
    # Progress for people; files owned by the container user.
    assert "epoch 2/2 step 16/16 loss" in proc.stdout
    assert "Training complete." in proc.stdout
    assert os.stat(dirs["artha"] / "events.jsonl").st_uid == 65534


def test_deterministic_and_resumable(image, first_run, tmp_path):
    want = steps_of(events_of(first_run[0]))
    again = job_dirs(tmp_path / "again")
    assert run_container(image, again).returncode == 0
    assert steps_of(events_of(again)) == want
    # Resume from the checkpoint after step 8 (given in /model): steps
    # 9..16 are those of the uninterrupted run.
    resumed = job_dirs(tmp_path / "resumed")
    shutil.copy(first_run[0]["checkpoints"] / "step-00000008.safetensors", resumed["model"])
    proc = run_container(image, resumed, {"ARTHA_RESUME": "step-00000008.safetensors"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    evs = events_of(resumed)
    assert steps_of(evs) == want[8:]
    assert evs[-1] == {"event": "complete", "steps": 16, "final_weights": want[-1]["weight_digest"]}
    # A resume with other settings is refused, naming the difference.
    other = job_dirs(tmp_path / "other")
    shutil.copy(first_run[0]["checkpoints"] / "step-00000008.safetensors", other["model"])
    proc = run_container(image, other, {"ARTHA_RESUME": "step-00000008.safetensors",
                                        "BATCH_SIZE": "16"})
    assert proc.returncode == 2
    (err,) = events_of(other)
    assert err["event"] == "error" and "batch size" in err["message"]


@pytest.mark.parametrize("case", ["bad-csv", "bad-env", "no-data", "label-range"])
def test_bad_input_is_an_error_event_and_no_step(image, tmp_path, case):
    csv, env, needles = None, {}, []
    if case == "bad-csv":
        rows = blobs_csv().splitlines()
        rows[4] = "0.1,oops,0.3,0.4,1"
        csv = "\n".join(rows) + "\n"
        needles = ["line 5, column 2", "/data/train.csv"]
    elif case == "bad-env":
        env, needles = {"EPOCHS": "two"}, ["EPOCHS"]
    elif case == "no-data":
        csv, needles = "", ["no data rows"]
    else:
        env, needles = {"ARTHA_CLASSES": "2"}, ["label 2 is out of range"]
        csv = blobs_csv().replace(",1\n", ",2\n", 1)
    dirs = job_dirs(tmp_path, csv)
    proc = run_container(image, dirs, env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    evs = events_of(dirs)
    assert not steps_of(evs)
    assert evs[-1]["event"] == "error"
    for n in needles:
        assert n in evs[-1]["message"], evs[-1]["message"]
    assert "artha-torch: error:" in proc.stderr


def test_unwritable_checkpoints_and_divergence(image, tmp_path):
    dirs = job_dirs(tmp_path / "ro")
    proc = run_container(image, dirs, ro_checkpoints=True)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    (err,) = events_of(dirs)
    assert err["event"] == "error" and "not writable" in err["message"]
    # A huge SGD step makes the loss overflow: an error, and every step
    # reported before it has a finite loss (read_events checks each line).
    dirs = job_dirs(tmp_path / "diverge")
    proc = run_container(image, dirs, {"ARTHA_OPTIMIZER": "sgd", "LEARNING_RATE": "1e30"})
    assert proc.returncode == 3, proc.stdout + proc.stderr
    evs = events_of(dirs)
    assert evs[-1]["event"] == "error" and "not finite" in evs[-1]["message"]
    assert 1 <= len(steps_of(evs)) < 16


TORCH_DIGESTS = r"""
import numpy as np, torch
from artha_runtime import digest, hashing
t = torch.arange(12, dtype=torch.float32).reshape(3, 4)
assert digest.tensor_digest(t) == digest.tensor_digest(t.numpy())
assert digest.tensor_digest(t.t()) == digest.tensor_digest(np.ascontiguousarray(t.numpy().T))
assert digest.tensor_digest(t[:, 1]) == digest.tensor_digest(t.numpy()[:, 1].copy())
bf = torch.tensor([1.0, -2.0, 0.5], dtype=torch.bfloat16)
assert digest.tensor_digest(bf) == digest.raw_tensor_digest(
    "bf16", [3], bf.view(torch.int16).numpy().tobytes())
for dt in (torch.float64, torch.float16, torch.int64, torch.int32, torch.uint8):
    x = torch.arange(6).to(dt).reshape(2, 3)
    assert digest.tensor_digest(x) == digest.tensor_digest(x.numpy()), dt
m = torch.nn.Linear(3, 2)
assert digest.named_digest(m.state_dict()) == digest.named_digest(
    [(k, v.numpy()) for k, v in m.state_dict().items()])
# Sampled digests (runtimes/PROOFS.md) of torch tensors are those of numpy arrays.
s = torch.arange(600, dtype=torch.float32).reshape(20, 30)
assert digest.sampled_named_digest([("w", s.t())], 3, 5) == digest.sampled_named_digest(
    [("w", np.ascontiguousarray(s.numpy().T))], 3, 5)
assert digest.named_digest_at([("w", s), ("b", s[0])], 1, 2, False) == digest.named_digest_at(
    [("w", s.numpy()), ("b", s[0].numpy())], 1, 2, False)
bs = s.to(torch.bfloat16)
pos = digest.sample_positions(1, 1, 0, 600)
assert digest.sampled_named_digest([("w", bs)], 1, 1) == hashing.new(
    digest.SAMPLED_DOMAIN + (1).to_bytes(4, "little") + b"w"
    + digest.header("bf16", [20, 30])[len(digest.TENSOR_DOMAIN):]
    + bs.reshape(-1)[torch.from_numpy(pos.astype(np.int64))].view(torch.int16).numpy().tobytes()
    + (1).to_bytes(4, "little")
).digest()
print(hashing.backend(), "OK")
"""


def test_torch_tensor_digests_in_the_image(image, tmp_path):
    dirs = job_dirs(tmp_path)
    proc = run_container(image, dirs, entry="python3", args=["-c", TORCH_DIGESTS])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["blake3", "OK"]
    # The same with the bundled pure-Python BLAKE3.
    proc = run_container(image, dirs, {"ARTHA_PURE_BLAKE3": "1"}, entry="python3",
                         args=["-c", TORCH_DIGESTS])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["pure-python", "OK"]


def run_native(dirs, env=None):
    full = {**os.environ, **JOB, **(env or {}),
            "ARTHA_MODEL_DIR": str(dirs["model"]), "ARTHA_DATA_DIR": str(dirs["data"]),
            "ARTHA_CHECKPOINT_DIR": str(dirs["checkpoints"]),
            "ARTHA_EVENTS": str(dirs["artha"] / "events.jsonl")}
    return subprocess.run([NATIVE], env=full, capture_output=True, text=True, timeout=300)


def test_the_native_runtime_agrees(image, first_run, tmp_path):
    required("ARTHA_NATIVE_RUNTIME", NATIVE)
    torch_steps = steps_of(events_of(first_run[0]))
    dirs = job_dirs(tmp_path / "native")
    proc = run_native(dirs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    native_steps = steps_of(events_of(dirs))
    # Same initial weights and batch order: the same batches, and losses
    # equal up to float summation order.
    assert [s["batch_digest"] for s in native_steps] == [s["batch_digest"] for s in torch_steps]
    for n, t in zip(native_steps, torch_steps):
        assert abs(n["loss"] - t["loss"]) <= 1e-5 * max(1.0, abs(n["loss"])), (n, t)
    # Checkpoints cross over: native resumes from torch's, torch from native's.
    cross = job_dirs(tmp_path / "native-from-torch")
    shutil.copy(first_run[0]["checkpoints"] / "step-00000008.safetensors", cross["model"])
    proc = run_native(cross, {"ARTHA_RESUME": "step-00000008.safetensors"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    evs = events_of(cross)
    assert [s["batch_digest"] for s in steps_of(evs)] == \
        [s["batch_digest"] for s in torch_steps[8:]]
    assert evs[-1]["event"] == "complete" and evs[-1]["steps"] == 16
    back = job_dirs(tmp_path / "torch-from-native")
    shutil.copy(dirs["checkpoints"] / "step-00000008.safetensors", back["model"])
    proc = run_container(image, back, {"ARTHA_RESUME": "step-00000008.safetensors"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    evs = events_of(back)
    assert [s["step"] for s in steps_of(evs)] == list(range(9, 17))
    assert evs[-1]["event"] == "complete" and evs[-1]["steps"] == 16


# ---- the language model (runtimes/LM.md) --------------------------------------

LM_SELFTEST = r"""
import math, sys
import numpy as np, torch
sys.path.insert(0, "/opt/artha")
import llama
from artha_runtime import lm

torch.set_num_threads(1)
c = lm.resolve(lm.parse_config({"kind": "llama", "hidden_size": 16, "num_attention_heads": 2,
                                 "num_hidden_layers": 2, "intermediate_size": 24,
                                 "max_position_embeddings": 8}), None)

# Parameter names, order and shapes are the specification's, tied and untied.
m = llama.build_model(torch, c)
assert [(n, tuple(p.shape)) for n, p in m.named_parameters()] == lm.param_shapes(c)
assert list(m.state_dict()) == lm.param_names(c)
cu = dict(c, tie_word_embeddings=False)
mu = llama.build_model(torch, cu)
assert [(n, tuple(p.shape)) for n, p in mu.named_parameters()] == lm.param_shapes(cu)

# A numpy float64 reference of the forward pass, written from LM.md alone.
def reference_loss(params, c, x, y):
    D, H = c["hidden_size"], c["num_attention_heads"]; hd = D // H
    eps, V = c["rms_norm_eps"], c["vocab_size"]
    P = {k: v.astype(np.float64) for k, v in params.items()}
    def rms(v, w):
        return v * (1.0 / np.sqrt((v * v).mean(-1, keepdims=True) + eps)) * w
    B, L = x.shape
    h0 = P["model.embed_tokens.weight"][x]                       # [B, L, D]
    t = np.arange(L)[:, None]; j = np.arange(hd // 2)[None, :]
    ang = t * c["rope_theta"] ** (-2.0 * j / hd); cs, sn = np.cos(ang), np.sin(ang)
    def rope(q):                                                  # [B, H, L, hd]
        a, b = q[..., :hd // 2], q[..., hd // 2:]
        return np.concatenate([a * cs - b * sn, b * cs + a * sn], -1)
    xs = h0
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        h = rms(xs, P[p + "input_layernorm.weight"])
        q, k, v = (np.transpose((h @ P[p + f"self_attn.{n}_proj.weight"].T).reshape(B, L, H, hd),
                                (0, 2, 1, 3)) for n in "qkv")
        q, k = rope(q), rope(k)
        s = q @ np.swapaxes(k, -1, -2) / math.sqrt(hd)
        s = np.where(np.triu(np.ones((L, L), bool), 1), -np.inf, s)
        s = np.exp(s - s.max(-1, keepdims=True)); s /= s.sum(-1, keepdims=True)
        a = np.transpose(s @ v, (0, 2, 1, 3)).reshape(B, L, D)
        xs = xs + a @ P[p + "self_attn.o_proj.weight"].T
        h = rms(xs, P[p + "post_attention_layernorm.weight"])
        g = h @ P[p + "mlp.gate_proj.weight"].T
        xs = xs + ((g / (1 + np.exp(-g))) * (h @ P[p + "mlp.up_proj.weight"].T)) @ P[p + "mlp.down_proj.weight"].T
    head = P["model.embed_tokens.weight"] if c["tie_word_embeddings"] else P["lm_head.weight"]
    z = rms(xs, P["model.norm.weight"]) @ head.T
    z = z.reshape(-1, V); yy = y.reshape(-1)
    mx = z.max(-1)
    return float(np.mean(np.log(np.exp(z - mx[:, None]).sum(-1)) - (z[np.arange(len(yy)), yy] - mx)))

rs = np.random.default_rng(0)
x = rs.integers(0, 256, (3, 8)); y = rs.integers(0, 256, (3, 8))
for cc in (c, cu):
    # Larger random weights than the 0.02 init, so that attention and the
    # MLP matter; the norm weights random too.
    params = {n: (rs.standard_normal(s) * (0.3 if len(s) == 2 else 1.0)).astype(np.float32)
              for n, s in lm.param_shapes(cc)}
    mm = llama.build_model(torch, cc).double()
    with torch.no_grad():
        for n, p in mm.named_parameters():
            p.copy_(torch.from_numpy(params[n].astype(np.float64)))
    got = float(llama.loss_of(torch, mm, torch.from_numpy(x), torch.from_numpy(y)))
    want = reference_loss(params, cc, x, y)
    assert abs(got - want) <= 1e-10 * abs(want), (got, want)
    # float32 agrees with the float64 reference to float32 accuracy.
    m32 = llama.build_model(torch, cc)
    llama.load_params(torch, m32, params)
    got32 = float(llama.loss_of(torch, m32, torch.from_numpy(x), torch.from_numpy(y)))
    assert abs(got32 - want) <= 1e-5 * abs(want), (got32, want)
    # Gradients against central finite differences, in float64.
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    mm.zero_grad(); llama.loss_of(torch, mm, xt, yt).backward()
    worst = 0.0
    for n, p in mm.named_parameters():
        flat, g = p.data.view(-1), p.grad.view(-1)
        for idx in rs.choice(flat.numel(), size=min(3, flat.numel()), replace=False):
            old = flat[idx].item(); e = 1e-5
            with torch.no_grad():
                flat[idx] = old + e; lp = float(llama.loss_of(torch, mm, xt, yt))
                flat[idx] = old - e; lm_ = float(llama.loss_of(torch, mm, xt, yt))
                flat[idx] = old
            fd = (lp - lm_) / (2 * e)
            err = abs(fd - g[idx].item()) / (1e-4 + abs(fd))
            worst = max(worst, err)
    assert worst < 1e-5, worst

# The seeded initialisation: the loss at step 1 is about ln V (tiny weights).
m = llama.build_model(torch, c)
llama.load_params(torch, m, lm.initial_params(c, 3))
l0 = float(llama.loss_of(torch, m, torch.from_numpy(x), torch.from_numpy(y)))
assert abs(l0 - math.log(256)) < 0.05, l0
# Causality: changing a later token changes no earlier logit.
x2 = x.copy(); x2[:, 5] = (x2[:, 5] + 1) % 256
with torch.no_grad():
    a, b = m(torch.from_numpy(x)), m(torch.from_numpy(x2))
assert torch.equal(a[:, :5], b[:, :5]) and not torch.equal(a[:, 5:], b[:, 5:])
print("OK")
"""


def test_lm_model_in_the_image(image, tmp_path):
    """Names/shapes, the forward pass against a float64 numpy reference of
    LM.md, gradients against finite differences, the loss at init ≈ ln 256,
    causality."""
    dirs = job_dirs(tmp_path)
    proc = run_container(image, dirs, entry="python3", args=["-c", LM_SELFTEST])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split() == ["OK"]


def test_native_sampled_digests_match_the_helper(tmp_path):
    """The native runtime's step records against artha_runtime's sampled and
    full digests (runtimes/PROOFS.md) on a batch of 32 × 12 features (384
    elements, so sampled between window ends): every batch digest, and the
    weight digests of the window ends' checkpoints."""
    required("ARTHA_NATIVE_RUNTIME", NATIVE)
    r = np.random.default_rng(5)
    lines = [",".join(f"f{i}" for i in range(12)) + ",label"]
    for i in range(200):
        lines.append(",".join(f"{v:.4f}" for v in r.standard_normal(12)) + f",{i % 3}")
    dirs = job_dirs(tmp_path, "\n".join(lines) + "\n")
    (dirs["model"] / "config.json").write_text(json.dumps(
        {"kind": "mlp", "task": "classify", "hidden": [24], "classes": 3}))
    job = {"EPOCHS": "2", "ARTHA_PROOF_WINDOW": "5"}  # 7 steps per epoch, 14 steps
    proc = run_native(dirs, job)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    steps = steps_of(events_of(dirs))
    assert len(steps) == 14
    ds = data.load_train(str(dirs["data"] / "train.csv"), "classify")
    seed, total = int(JOB["ARTHA_SEED"]), 14
    for s in steps:
        k = s["step"]
        e, b = (k - 1) // 7, (k - 1) % 7
        rows = rng.permutation(seed, e, ds.rows)[b * 32:(b + 1) * 32]
        full = is_full_step(k, 5, total)
        want = named_digest_at([("x", ds.x[rows]), ("y", ds.y[rows])], seed, k, full).hex()
        assert s["batch_digest"] == want, k
        if not full and len(rows) * 12 > SAMPLE_SIZE:  # sampled x (the last batch of an epoch has 8 rows)
            assert want != named_digest([("x", ds.x[rows]), ("y", ds.y[rows])])
    for k in (5, 10):
        ck = checkpoint.load(str(dirs["checkpoints"] / checkpoint.step_file(k)))
        assert steps[k - 1]["weight_digest"] == ck["weights_digest"]
        assert named_digest_at(ck["params"], seed, k, True).hex() == ck["weights_digest"]
    # A sampled step's weight digest, recomputed from the checkpoint after it
    # (ARTHA_CHECKPOINT_EVERY=1 in a second run).
    again = job_dirs(tmp_path / "every", "\n".join(lines) + "\n")
    (again["model"] / "config.json").write_text((dirs["model"] / "config.json").read_text())
    assert run_native(again, {**job, "ARTHA_CHECKPOINT_EVERY": "1"}).returncode == 0
    for k in (3, 7):
        ck = checkpoint.load(str(again["checkpoints"] / checkpoint.step_file(k)))
        assert steps[k - 1]["weight_digest"] == \
            named_digest_at(ck["params"], seed, k, False).hex() != ck["weights_digest"]


#: The LM job: a small llama over ~6.6 KB of text; 16-token examples, 24 per
#: batch, 3 epochs of 18 steps (54 steps), windows of 10. A batch's x and y
#: are i64 [24, 16] (384 elements), so steps off the window ends record
#: sampled batch digests (runtimes/PROOFS.md); an epoch's last batch has 4
#: rows and is hashed whole.
LM_CONFIG = {"kind": "llama", "hidden_size": 32, "num_hidden_layers": 2,
             "num_attention_heads": 4, "max_position_embeddings": 32}
LM_JOB = {"EPOCHS": "3", "BATCH_SIZE": "24", "LEARNING_RATE": "0.01", "ARTHA_SEED": "11",
          "ARTHA_PROOF_WINDOW": "10", "ARTHA_SEQ_LEN": "16", "ARTHA_JOB_ID": "lm-test"}


def lm_text(n_words=1200, seed=2):
    words = ("the quick brown fox jumps over a lazy dog while seven wizards quietly hex "
             "jovial kings and queens").split()
    r = np.random.default_rng(seed)
    return " ".join(words[i] for i in r.integers(0, len(words), n_words)) + "\n"


LM_PER_EPOCH = -(-((len(lm_text().encode()) - 1) // 16) // 24)
LM_STEPS = 3 * LM_PER_EPOCH


def lm_dirs(root, text=None, config=None):
    dirs = job_dirs(root)
    (dirs["data"] / "train.csv").unlink()
    (dirs["model"] / "config.json").write_text(json.dumps(LM_CONFIG if config is None else config))
    (dirs["data"] / "train.txt").write_text(lm_text() if text is None else text)
    return dirs


@pytest.fixture(scope="module")
def lm_run(image, tmp_path_factory):
    dirs = lm_dirs(tmp_path_factory.mktemp("lm1"))
    proc = run_container(image, dirs, LM_JOB)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dirs, proc


def lm_batches(text, seed, batch, seq_len, steps):
    """`(x, y)` of each step, from the helper alone (LM.md's batches)."""
    ds = lm.Corpus(np.frombuffer(text.encode(), np.uint8).astype(np.int64), seq_len, "t")
    per = -(-ds.rows // batch)
    out = []
    for k in range(1, steps + 1):
        e, b = (k - 1) // per, (k - 1) % per
        rows = rng.permutation(seed, e, ds.rows)[b * batch:(b + 1) * batch]
        out.append((ds.x[rows], ds.y[rows]))
    return out


def test_lm_trains_and_reports_valid_events(lm_run):
    dirs, proc = lm_run
    evs = events_of(dirs)
    steps = steps_of(evs)
    assert [s["step"] for s in steps] == list(range(1, LM_STEPS + 1))
    assert LM_PER_EPOCH == 18
    assert [s["epoch"] for s in steps] == [0] * 18 + [1] * 18 + [2] * 18
    cks = [(e["path"], e["step"]) for e in evs if e["event"] == "checkpoint"]
    assert cks == [(checkpoint.step_file(k), k) for k in (10, 20, 30, 40, 50)] + \
        [("final.safetensors", LM_STEPS)]
    # Loss at step 1 ≈ ln 256 (weights of standard deviation 0.02); it learns.
    losses = [s["loss"] for s in steps]
    assert abs(losses[0] - np.log(256)) < 0.05, losses[0]
    assert np.mean(losses[-5:]) < 0.7 * losses[0], losses
    # Batches: [x, y] i64 [24, 16], sampled off the window ends.
    text = (dirs["data"] / "train.txt").read_text()
    for s, (x, y) in zip(steps, lm_batches(text, 11, 24, 16, LM_STEPS)):
        full = is_full_step(s["step"], 10, LM_STEPS)
        assert s["batch_digest"] == named_digest_at([("x", x), ("y", y)], 11, s["step"], full).hex()
        if not full and x.size > SAMPLE_SIZE:
            assert s["batch_digest"] != named_digest([("x", x), ("y", y)])
    # Checkpoints: the LM configuration, the specification's tensors, the
    # full weight digest of the window ends; the last step's is the final one.
    ck = checkpoint.load(str(dirs["checkpoints"] / "step-00000020.safetensors"))
    assert ck["model"] == lm.checkpoint_config(lm.resolve(lm.parse_config(LM_CONFIG), None))
    assert list(ck["params"]) == lm.param_names(lm.from_checkpoint_config(ck["model"]))
    assert ck["weights_digest"] == steps[19]["weight_digest"]
    assert ck["train"]["step"] == 20 and ck["train"]["rows"] == (len(text.encode()) - 1) // 16
    final = checkpoint.load(str(dirs["checkpoints"] / "final.safetensors"))
    assert final["weights_digest"] == evs[-1]["final_weights"] == steps[-1]["weight_digest"]
    # Sampled steps: the embedding (256 × 32) is sampled, so a sampled
    # step's weight digest is not the full digest of the same weights.
    assert named_digest_at(final["params"], 11, LM_STEPS, False) != \
        named_digest_at(final["params"], 11, LM_STEPS, True)
    assert "Training complete." in proc.stdout


def test_lm_deterministic_and_resumable(image, lm_run, tmp_path):
    want = steps_of(events_of(lm_run[0]))
    again = lm_dirs(tmp_path / "again")
    assert run_container(image, again, LM_JOB).returncode == 0
    assert steps_of(events_of(again)) == want
    resumed = lm_dirs(tmp_path / "resumed")
    shutil.copy(lm_run[0]["checkpoints"] / "step-00000020.safetensors", resumed["model"])
    proc = run_container(image, resumed, {**LM_JOB, "ARTHA_RESUME": "step-00000020.safetensors"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    evs = events_of(resumed)
    assert steps_of(evs) == want[20:]
    assert evs[-1]["final_weights"] == want[-1]["weight_digest"]
    # Another sequence length is other data: refused, naming it.
    other = lm_dirs(tmp_path / "other")
    shutil.copy(lm_run[0]["checkpoints"] / "step-00000020.safetensors", other["model"])
    proc = run_container(image, other, {**LM_JOB, "ARTHA_RESUME": "step-00000020.safetensors",
                                        "ARTHA_SEQ_LEN": "8"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert "dataset" in events_of(other)[-1]["message"]


@pytest.mark.parametrize("case", ["heads", "odd-head", "vocab", "seq-len", "short", "utf8", "kind"])
def test_lm_bad_input_names_the_field(image, tmp_path, case):
    config, text, env, needle = dict(LM_CONFIG), None, dict(LM_JOB), None
    if case == "heads":
        config["num_attention_heads"], needle = 5, "num_attention_heads"
    elif case == "odd-head":
        config["hidden_size"], config["num_attention_heads"], needle = 24, 8, "num_attention_heads"
    elif case == "vocab":
        config["vocab_size"], needle = 100, "vocab_size"
    elif case == "seq-len":
        env["ARTHA_SEQ_LEN"], needle = "33", "ARTHA_SEQ_LEN"
    elif case == "short":
        text, needle = "0123456789abcdef", "too short"
    elif case == "utf8":
        config["tokenizer"], needle = "char", "UTF-8"
    else:
        config["kind"], needle = "gpt2", "kind"
    dirs = lm_dirs(tmp_path, text, config)
    if case == "utf8":
        (dirs["data"] / "train.txt").write_bytes(b"caf\xe9 " * 100)
    proc = run_container(image, dirs, env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    evs = events_of(dirs)
    assert not steps_of(evs) and evs[-1]["event"] == "error"
    assert needle in evs[-1]["message"], evs[-1]["message"]


def test_lm_inference(image, lm_run, tmp_path):
    dirs = lm_dirs(tmp_path)
    shutil.copy(lm_run[0]["checkpoints"] / "final.safetensors", dirs["model"])
    (dirs["data"] / "prompts.txt").write_text("the quick\n\njovial kings and\n")
    (dirs["data"] / "train.txt").unlink()
    outs = {}
    for t in ("0", "0.8"):
        env = {"ARTHA_MODE": "infer", "ARTHA_TEMPERATURE": t, "ARTHA_MAX_NEW_TOKENS": "40",
               "ARTHA_SEED": "4"}
        (dirs["artha"] / "events.jsonl").unlink(missing_ok=True)
        proc = run_container(image, dirs, env)
        assert proc.returncode == 0, proc.stdout + proc.stderr
        evs = events_of(dirs)
        assert [e["event"] for e in evs] == ["log"] + ["infer"] * 3 + ["complete"]
        evs = evs[1:]
        assert evs[-1] == {"event": "complete", "steps": 0,
                           "final_weights": steps_of(events_of(lm_run[0]))[-1]["weight_digest"]}
        gens = [json.loads(line) for line in
                (dirs["checkpoints"] / "generations.jsonl").read_text().splitlines()]
        assert [g["prompt"] for g in gens] == ["the quick", "", "jovial kings and"]
        assert all(len(g["tokens"]) == 40 for g in gens)
        assert all(bytes(g["tokens"]).decode("utf-8", "replace") == g["completion"] for g in gens)
        assert evs[0]["input_digest"] == tensor_digest(np.array(list(b"the quick"), np.int64)).hex()
        assert evs[1]["input_digest"] == tensor_digest(np.zeros(0, np.int64)).hex()
        assert evs[0]["output_digest"] == tensor_digest(np.array(gens[0]["tokens"], np.int64)).hex()
        outs[t] = gens
        # Deterministic: the same again.
        assert run_container(image, dirs, env).returncode == 0
        assert [json.loads(line) for line in
                (dirs["checkpoints"] / "generations.jsonl").read_text().splitlines()] == gens
    assert outs["0"] != outs["0.8"]
    # The trained model has learnt the corpus' alphabet: greedy text is
    # mostly letters and spaces.
    greedy = outs["0"][0]["completion"] + outs["0"][2]["completion"]  # (not after token 0)
    assert sum(ch.isalpha() or ch == " " for ch in greedy) >= 0.9 * len(greedy), greedy


def lm_loss_tolerance(k):
    """Relative tolerance on the loss of step k between the runtimes.

    Both compute in f32 with the same weights and batches, but sum in other
    orders (torch's BLAS blocks its products; the native runtime sums `k`
    in order, and its loss mean in f64), so step 1 differs by a few f32
    ulps (observed ≤ 2e-7 relative). AdamW divides each update by √v̂, so
    a last-bit difference in a small gradient becomes a larger difference
    in the weights, and it compounds: on this job the observed relative
    difference stays below 1e-6 to step 40 and reaches 2e-5 to 4e-5 by
    step 54 (batches of 8 and 24 rows tried). The
    tolerance is 1e-6 at step 1, doubling every 8 steps (1.1e-4 at 54):
    a wrong forward or backward pass (a mask, a RoPE sign, a norm) moves
    the first losses by 1e-3 or more."""
    return 1e-6 * 2.0 ** (k / 8.0)


def test_lm_the_native_runtime_agrees(image, lm_run, tmp_path):
    """The same config, seed and text on both runtimes: the same batches at
    every step, losses within `lm_loss_tolerance` over all 54 steps,
    checkpoints that resume across, and the same greedy generations."""
    required("ARTHA_NATIVE_RUNTIME", NATIVE)
    torch_steps = steps_of(events_of(lm_run[0]))
    dirs = lm_dirs(tmp_path / "native")
    proc = run_native(dirs, LM_JOB)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    native_steps = steps_of(events_of(dirs))
    assert [s["step"] for s in native_steps] == list(range(1, LM_STEPS + 1))
    assert [s["batch_digest"] for s in native_steps] == [s["batch_digest"] for s in torch_steps]
    worst = 0.0
    for n, t in zip(native_steps, torch_steps):
        rel = abs(n["loss"] - t["loss"]) / abs(n["loss"])
        assert rel <= lm_loss_tolerance(n["step"]), (n["step"], n["loss"], t["loss"], rel)
        worst = max(worst, rel / lm_loss_tolerance(n["step"]))
    rels = [abs(n["loss"] - t["loss"]) / abs(n["loss"]) for n, t in zip(native_steps, torch_steps)]
    print(f"LM parity: max |Δloss|/loss over steps 1-10 {max(rels[:10]):.2g}, 1-20 "
          f"{max(rels[:20]):.2g}, 1-40 {max(rels[:40]):.2g}, 1-{LM_STEPS} {max(rels):.2g}; "
          f"max |Δloss| {max(abs(n['loss'] - t['loss']) for n, t in zip(native_steps, torch_steps)):.2g}; "
          f"{worst:.2f} of the tolerance at worst")
    # Window ends hash whole, so the native checkpoint's digests are the
    # helper's; the model configuration is the same object.
    nck = checkpoint.load(str(dirs["checkpoints"] / "step-00000020.safetensors"))
    tck = checkpoint.load(str(lm_run[0]["checkpoints"] / "step-00000020.safetensors"))
    assert nck["model"] == tck["model"] and nck["train"]["data_digest"] == tck["train"]["data_digest"]
    assert nck["weights_digest"] == native_steps[19]["weight_digest"]
    # Checkpoints cross over: torch resumes the native one, native the torch one.
    back = lm_dirs(tmp_path / "torch-from-native")
    shutil.copy(dirs["checkpoints"] / "step-00000020.safetensors", back["model"])
    proc = run_container(image, back, {**LM_JOB, "ARTHA_RESUME": "step-00000020.safetensors"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    evs = steps_of(events_of(back))
    assert [s["batch_digest"] for s in evs] == [s["batch_digest"] for s in native_steps[20:]]
    assert abs(evs[0]["loss"] - native_steps[20]["loss"]) <= 1e-6 * native_steps[20]["loss"]
    cross = lm_dirs(tmp_path / "native-from-torch")
    shutil.copy(lm_run[0]["checkpoints"] / "step-00000020.safetensors", cross["model"])
    proc = run_native(cross, {**LM_JOB, "ARTHA_RESUME": "step-00000020.safetensors"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    evs = events_of(cross)
    assert [s["batch_digest"] for s in steps_of(evs)] == [s["batch_digest"] for s in torch_steps[20:]]
    assert abs(steps_of(evs)[0]["loss"] - torch_steps[20]["loss"]) <= 1e-6 * torch_steps[20]["loss"]
    assert evs[-1]["event"] == "complete" and evs[-1]["steps"] == LM_STEPS
    # Inference from the same (native) weights, greedy and seeded: the
    # same infer events and generations.jsonl, byte for byte (the logits
    # differ in the last bits, which moves an argmax or an inverse-CDF pick
    # only on a near tie).
    for temperature in ("0", "0.8"):
        gens = {}
        for who in ("native", "torch"):
            inf = lm_dirs(tmp_path / f"infer-{who}-{temperature}")
            shutil.copy(dirs["checkpoints"] / "final.safetensors", inf["model"])
            (inf["data"] / "train.txt").unlink()
            (inf["data"] / "prompts.txt").write_text("the quick\n\njovial kings and\n")
            env = {"ARTHA_MODE": "infer", "ARTHA_MAX_NEW_TOKENS": "24",
                   "ARTHA_TEMPERATURE": temperature}
            proc = run_native(inf, env) if who == "native" else run_container(image, inf, env)
            assert proc.returncode == 0, proc.stdout + proc.stderr
            gens[who] = ([e for e in events_of(inf) if e["event"] != "log"],
                         (inf["checkpoints"] / "generations.jsonl").read_text())
        assert gens["native"][0] == gens["torch"][0]
        nat = [json.loads(line) for line in gens["native"][1].splitlines()]
        tor = [json.loads(line) for line in gens["torch"][1].splitlines()]
        assert [g["tokens"] for g in nat] == [g["tokens"] for g in tor], temperature
        assert gens["native"][1] == gens["torch"][1]
