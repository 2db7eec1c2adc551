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

from artha_runtime import checkpoint, data, rng
from artha_runtime.digest import named_digest, named_digest_at
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
    # (This MLP's tensors have at most S = 256 elements, so its sampled
    # steps hash them whole; the LM tests exercise the sampled digests.)
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
