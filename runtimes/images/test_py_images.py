"""The TensorFlow and JAX images run runtimes/<tf|jax>/train.py under Docker
the way the engine's Docker executor runs a job (network none, read-only
root and /model, /data; writable /checkpoints, /artha; user 65534; no
capabilities), report events the engine accepts, and agree with the native
runtime on the same data, seed and hyper-parameters.

Run by runtimes/tf/test.sh and runtimes/jax/test.sh, which build the image
and the native runtime and set `ARTHA_PY_RUNTIME` (tf or jax),
`ARTHA_PY_IMAGE` (its tag) and `ARTHA_NATIVE_RUNTIME`; without them these
tests are skipped, except under CI=true, where they fail.

Agreement with the native runtime, at every step of every run:
- batch digests are equal (same rows in the same order, same bytes; both
  runtimes record full digests at the window ends and the last step and
  sampled ones elsewhere, runtimes/PROOFS.md);
- losses agree within LOSS_RTOL, relative to max(1, |loss|). Both compute in float32 from the
  same initial weights and batches, but XLA / Eigen sum in another order
  (and fuse multiply-adds) than the native kernels, so each op differs in
  the last bits (~1e-7) and the differences carry through the updates. The
  largest measured difference over these 16-step runs is ~2e-7 relative
  (runtimes/README.md); 1e-5 leaves a 50× margin and still catches any
  wrong formula (a missing bias correction, weight decay or mean moves the
  loss by more than 1e-3 within a step or two). Weight and gradient
  digests differ for the same reason: audits replay with the native
  runtime.
"""

import json
import os
import pathlib
import shutil
import sys

import numpy as np
import pytest

HERE = pathlib.Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "python"))
sys.path.insert(0, str(HERE.parent / "python" / "tests"))

from artha_runtime import checkpoint, data, rng  # noqa: E402
from artha_runtime.digest import named_digest, named_digest_at  # noqa: E402
from artha_runtime.events import read_events  # noqa: E402
import test_torch_image as base  # noqa: E402  (the Docker and native runners)

RUNTIME = os.environ.get("ARTHA_PY_RUNTIME", "")
IMAGE = os.environ.get("ARTHA_PY_IMAGE", "")
NATIVE = os.environ.get("ARTHA_NATIVE_RUNTIME", "")
LOSS_RTOL = 1e-5

CLASSIFY = {"kind": "mlp", "task": "classify", "hidden": [16], "classes": 2}
#: Regression with SGD, momentum and weight decay: the other optimizer path.
REGRESS = {"kind": "mlp", "task": "regress", "hidden": [8]}
REGRESS_ENV = {"ARTHA_OPTIMIZER": "sgd", "ARTHA_MOMENTUM": "0.9", "ARTHA_WEIGHT_DECAY": "0.001",
               "LEARNING_RATE": "0.01"}


def required(var, value):
    if not value:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{var} is not set: under CI this test must run "
                        "(runtimes/tf/test.sh and runtimes/jax/test.sh set it)")
        pytest.skip(f"{var} not set (run runtimes/tf/test.sh or runtimes/jax/test.sh)")
    return value


@pytest.fixture(scope="module")
def image():
    required("ARTHA_PY_RUNTIME", RUNTIME)
    return required("ARTHA_PY_IMAGE", IMAGE)


@pytest.fixture(scope="module")
def native():
    return required("ARTHA_NATIVE_RUNTIME", NATIVE)


def regress_csv(rows=256, seed=5):
    """y = x·w + noise over 3 inputs."""
    r = np.random.default_rng(seed)
    w = np.array([0.5, -1.0, 2.0])
    lines = ["x0,x1,x2,y"]
    for _ in range(rows):
        x = r.standard_normal(3)
        lines.append(",".join(f"{v:.6f}" for v in x) + f",{x @ w + 0.1 * r.standard_normal():.6f}")
    return "\n".join(lines) + "\n"


def job_dirs(root, csv=None, config=None):
    dirs = base.job_dirs(root, csv)
    if config is not None:
        (dirs["model"] / "config.json").write_text(json.dumps(config))
    return dirs


def steps_of(dirs):
    return base.steps_of(read_events(dirs["artha"] / "events.jsonl"))


def assert_agree(ours, theirs, what):
    """Every step: same number, epoch and batch digest; loss within LOSS_RTOL."""
    assert [s["step"] for s in ours] == [s["step"] for s in theirs], what
    assert [s["epoch"] for s in ours] == [s["epoch"] for s in theirs], what
    assert [s["batch_digest"] for s in ours] == [s["batch_digest"] for s in theirs], what
    worst = 0.0
    for a, b in zip(ours, theirs):
        rel = abs(a["loss"] - b["loss"]) / max(1.0, abs(b["loss"]))  # as the torch test
        assert rel <= LOSS_RTOL, (what, a, b)
        worst = max(worst, rel)
    print(f"\n{RUNTIME} vs native, {what}: {len(ours)} steps, batch digests equal, "
          f"largest loss difference {worst:.2e} (relative to max(1, |loss|))")


@pytest.fixture(scope="module")
def first_run(image, tmp_path_factory):
    dirs = job_dirs(tmp_path_factory.mktemp("run1"))
    proc = base.run_container(image, dirs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dirs, proc


@pytest.fixture(scope="module")
def native_run(native, tmp_path_factory):
    dirs = job_dirs(tmp_path_factory.mktemp("native"))
    proc = base.run_native(dirs)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return dirs


def test_trains_and_reports_valid_events(first_run):
    dirs, proc = first_run
    evs = read_events(dirs["artha"] / "events.jsonl")  # each line checked as the engine does
    kinds = [e["event"] for e in evs]
    assert kinds == ["log"] + ["step"] * 8 + ["checkpoint"] + ["step"] * 8 + \
        ["checkpoint", "checkpoint", "log", "complete"], kinds
    steps = base.steps_of(evs)
    assert [s["step"] for s in steps] == list(range(1, 17))
    assert [s["epoch"] for s in steps] == [0] * 8 + [1] * 8
    cks = [e for e in evs if e["event"] == "checkpoint"]
    assert [(c["path"], c["step"]) for c in cks] == [
        ("step-00000008.safetensors", 8), ("step-00000016.safetensors", 16),
        ("final.safetensors", 16)]
    done = evs[-1]
    assert done["steps"] == 16
    final = checkpoint.load(str(dirs["checkpoints"] / "final.safetensors"))
    assert final["weights_digest"] == done["final_weights"] == steps[-1]["weight_digest"]
    assert named_digest(final["params"]) == done["final_weights"]
    assert final["train"]["optimizer_t"] == 16 and final["model"]["hidden"] == [16]
    mid = checkpoint.load(str(dirs["checkpoints"] / "step-00000008.safetensors"))
    assert mid["weights_digest"] == steps[7]["weight_digest"]
    ds = data.load_train(str(dirs["data"] / "train.csv"), "classify")
    rows = rng.permutation(3, 0, ds.rows)[:32]
    # Step 1 is not a window end: its batch digest is the sampled one.
    assert steps[0]["batch_digest"] == named_digest_at(
        [("x", ds.x[rows]), ("y", ds.y[rows])], 3, 1, full=False).hex()
    losses = [s["loss"] for s in steps]
    assert np.mean(losses[-4:]) < 0.75 * np.mean(losses[:4]), losses
    assert "epoch 2/2 step 16/16 loss" in proc.stdout
    assert "Training complete." in proc.stdout
    assert os.stat(dirs["artha"] / "events.jsonl").st_uid == 65534


def test_agrees_with_the_native_runtime(first_run, native_run):
    assert_agree(steps_of(first_run[0]), steps_of(native_run), "classify, AdamW")


def test_regression_with_sgd_agrees_with_the_native_runtime(image, native, tmp_path):
    ours = job_dirs(tmp_path / "ours", regress_csv(), REGRESS)
    proc = base.run_container(image, ours, REGRESS_ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    theirs = job_dirs(tmp_path / "native", regress_csv(), REGRESS)
    proc = base.run_native(theirs, REGRESS_ENV)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert_agree(steps_of(ours), steps_of(theirs), "regress, SGD with momentum and weight decay")
    ck = checkpoint.load(str(ours["checkpoints"] / "step-00000008.safetensors"))
    assert sorted(k.split(".")[1] for k in ck["optimizer"]) == ["momentum_buffer"] * 4


def test_deterministic_and_resumable(image, first_run, tmp_path):
    want = steps_of(first_run[0])
    again = job_dirs(tmp_path / "again")
    assert base.run_container(image, again).returncode == 0
    assert steps_of(again) == want
    resumed = job_dirs(tmp_path / "resumed")
    shutil.copy(first_run[0]["checkpoints"] / "step-00000008.safetensors", resumed["model"])
    proc = base.run_container(image, resumed, {"ARTHA_RESUME": "step-00000008.safetensors"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    evs = read_events(resumed["artha"] / "events.jsonl")
    assert base.steps_of(evs) == want[8:]
    assert evs[-1] == {"event": "complete", "steps": 16, "final_weights": want[-1]["weight_digest"]}
    # ARTHA_MAX_STEPS stops at a global step.
    short = job_dirs(tmp_path / "short")
    proc = base.run_container(image, short, {"ARTHA_MAX_STEPS": "5"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert steps_of(short) == want[:5]


def test_checkpoints_cross_over(image, native, first_run, native_run, tmp_path):
    ours, theirs = steps_of(first_run[0]), steps_of(native_run)
    # The native runtime resumes from this runtime's checkpoint after step 8 …
    cross = job_dirs(tmp_path / "native-from-image")
    shutil.copy(first_run[0]["checkpoints"] / "step-00000008.safetensors", cross["model"])
    proc = base.run_native(cross, {"ARTHA_RESUME": "step-00000008.safetensors"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    evs = read_events(cross["artha"] / "events.jsonl")
    assert_agree(base.steps_of(evs), ours[8:], "native resumed from the image's step 8")
    assert evs[-1]["event"] == "complete" and evs[-1]["steps"] == 16
    # … and this runtime from the native one's: from the same state, each
    # step agrees with the native run's.
    back = job_dirs(tmp_path / "image-from-native")
    shutil.copy(native_run["checkpoints"] / "step-00000008.safetensors", back["model"])
    proc = base.run_container(image, back, {"ARTHA_RESUME": "step-00000008.safetensors"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    evs = read_events(back["artha"] / "events.jsonl")
    assert_agree(base.steps_of(evs), theirs[8:], "image resumed from the native step 8")
    assert evs[-1]["event"] == "complete" and evs[-1]["steps"] == 16
    # A resume with other settings is refused, naming the difference.
    other = job_dirs(tmp_path / "other")
    shutil.copy(native_run["checkpoints"] / "step-00000008.safetensors", other["model"])
    proc = base.run_container(image, other, {"ARTHA_RESUME": "step-00000008.safetensors",
                                             "BATCH_SIZE": "16"})
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (err,) = read_events(other["artha"] / "events.jsonl")
    assert err["event"] == "error" and err["message"].startswith("checkpoint:")
    assert "batch size" in err["message"]


@pytest.mark.parametrize("case", ["bad-csv", "bad-env", "bad-optimizer", "label-range", "no-gpu"])
def test_bad_input_is_an_error_event_naming_the_field(image, tmp_path, case):
    csv, env, needles = None, {}, []
    if case == "bad-csv":
        rows = base.blobs_csv().splitlines()
        rows[4] = "0.1,oops,0.3,0.4,1"
        csv = "\n".join(rows) + "\n"
        needles = ["line 5, column 2", "/data/train.csv"]
    elif case == "bad-env":
        env, needles = {"EPOCHS": "two"}, ["EPOCHS:"]
    elif case == "bad-optimizer":
        env, needles = {"ARTHA_OPTIMIZER": "lion"}, ["ARTHA_OPTIMIZER:", "lion"]
    elif case == "no-gpu":  # a CPU image asked for a GPU refuses, never trains on the CPU
        env, needles = {"ARTHA_DEVICE": "cuda"}, ["ARTHA_DEVICE:", "`cuda` requested"]
    else:
        env, needles = {"ARTHA_CLASSES": "2"}, ["data:", "label 2 is out of range"]
        csv = base.blobs_csv().replace(",1\n", ",2\n", 1)
    dirs = job_dirs(tmp_path, csv)
    proc = base.run_container(image, dirs, env)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    evs = read_events(dirs["artha"] / "events.jsonl")
    assert not base.steps_of(evs)
    assert evs[-1]["event"] == "error"
    for n in needles:
        assert n in evs[-1]["message"], evs[-1]["message"]
    assert f"artha-{RUNTIME}: error:" in proc.stderr


def test_unwritable_checkpoints_and_divergence(image, tmp_path):
    dirs = job_dirs(tmp_path / "ro")
    proc = base.run_container(image, dirs, ro_checkpoints=True)
    assert proc.returncode == 4, proc.stdout + proc.stderr
    (err,) = read_events(dirs["artha"] / "events.jsonl")
    assert err["event"] == "error" and "not writable" in err["message"]
    # A huge SGD step makes the loss overflow: an error naming the loss, and
    # every step reported before it has a finite loss (read_events checks).
    dirs = job_dirs(tmp_path / "diverge")
    proc = base.run_container(image, dirs, {"ARTHA_OPTIMIZER": "sgd", "LEARNING_RATE": "1e30"})
    assert proc.returncode == 3, proc.stdout + proc.stderr
    evs = read_events(dirs["artha"] / "events.jsonl")
    assert evs[-1]["event"] == "error" and evs[-1]["message"].startswith("loss:")
    assert "not finite" in evs[-1]["message"]
    assert 1 <= len(base.steps_of(evs)) < 16


def test_no_network_needed(image, tmp_path):
    """The image imports its framework and the helper offline, read-only."""
    dirs = job_dirs(tmp_path)
    module = {"tf": "tensorflow", "jax": "jax"}[RUNTIME]
    code = (f"import {module}, blake3, numpy; from artha_runtime import hashing; "
            f"print(hashing.backend(), {module}.__version__)")
    proc = base.run_container(image, dirs, entry="python3", args=["-c", code])
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.split()[0] == "blake3"
