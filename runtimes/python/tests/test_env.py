"""The run configuration: defaults of the runtime protocol, and errors that
name the variable (the cases of runtimes/native/src/config.rs's tests)."""
import json

import pytest

from artha_runtime import env
from artha_runtime.errors import BadInput


def cfg(**pairs):
    return env.from_lookup(pairs.get)


def test_defaults_follow_the_protocol():
    c = cfg()
    assert (c.mode, c.epochs, c.batch_size, c.seed) == ("train", 1, 32, 0)
    assert c.optimizer == env.OptimizerConfig("adamw", 1e-3, 0.01, 0.0, 0.9, 0.999, 1e-8)
    assert c.checkpoint_every == c.proof_window == 100
    assert (c.model_dir, c.data_dir, c.checkpoint_dir) == ("/model", "/data", "/checkpoints")
    assert c.events == "/artha/events.jsonl"
    assert c.output_dir == "/checkpoints"
    assert (c.threads, c.device) == (1, "cpu")
    # Empty values count as unset.
    assert cfg(EPOCHS="", ARTHA_MODEL_DIR="  ").model_dir == "/model"


def test_values_are_read():
    c = cfg(ARTHA_JOB_KIND="infer", EPOCHS="3", BATCH_SIZE="16", LEARNING_RATE="0.05",
            ARTHA_SEED="42", ARTHA_PROOF_WINDOW="10", ARTHA_OPTIMIZER="sgd", ARTHA_MOMENTUM="0.9",
            ARTHA_HIDDEN="32, 16", ARTHA_MODEL_KIND="mlp", ARTHA_TASK="regress",
            ARTHA_DEVICE="cuda:1", ARTHA_MODEL_DIR="/m", ARTHA_DATA_DIR="/d",
            ARTHA_CHECKPOINT_DIR="/c", ARTHA_EVENTS="/e.jsonl", ARTHA_THREADS="2")
    assert c.mode == "infer"
    assert (c.epochs, c.batch_size, c.seed) == (3, 16, 42)
    assert c.checkpoint_every == 10
    assert c.hidden == [32, 16]
    assert c.optimizer.kind == "sgd" and c.optimizer.momentum == 0.9
    assert c.optimizer.lr == 0.05 and c.optimizer.weight_decay == 0.0
    assert (c.task, c.kind, c.device, c.threads) == ("regress", "mlp", "cuda:1", 2)
    assert (c.model_dir, c.data_dir, c.checkpoint_dir, c.output_dir, c.events) == \
        ("/m", "/d", "/c", "/c", "/e.jsonl")
    assert cfg(ARTHA_CHECKPOINT_EVERY="0").checkpoint_every == 0


@pytest.mark.parametrize("pairs, var", [
    ({"EPOCHS": "x"}, "EPOCHS"),
    ({"EPOCHS": "-1"}, "EPOCHS"),
    ({"EPOCHS": "1.5"}, "EPOCHS"),
    ({"BATCH_SIZE": "0"}, "BATCH_SIZE"),
    ({"BATCH_SIZE": str((1 << 20) + 1)}, "BATCH_SIZE"),
    ({"LEARNING_RATE": "-1"}, "LEARNING_RATE"),
    ({"LEARNING_RATE": "nan"}, "LEARNING_RATE"),
    ({"LEARNING_RATE": "1_0"}, "LEARNING_RATE"),
    ({"ARTHA_SEED": "18446744073709551616"}, "ARTHA_SEED"),
    ({"ARTHA_OPTIMIZER": "lbfgs"}, "ARTHA_OPTIMIZER"),
    ({"ARTHA_MODE": "agent"}, "ARTHA_MODE"),
    ({"ARTHA_JOB_KIND": "agent"}, "ARTHA_JOB_KIND"),
    ({"ARTHA_HIDDEN": "8,x"}, "ARTHA_HIDDEN"),
    ({"ARTHA_DEVICE": "tpu"}, "ARTHA_DEVICE"),
    ({"ARTHA_PROOF_WINDOW": "0"}, "ARTHA_PROOF_WINDOW"),
    ({"ARTHA_MOMENTUM": "1"}, "ARTHA_MOMENTUM"),
    ({"ARTHA_WEIGHT_DECAY": "-0.1"}, "ARTHA_WEIGHT_DECAY"),
    ({"ARTHA_TASK": "cluster"}, "ARTHA_TASK"),
    ({"ARTHA_MODEL_KIND": "cnn"}, "ARTHA_MODEL_KIND"),
    ({"ARTHA_THREADS": "0"}, "ARTHA_THREADS"),
    ({"ARTHA_MAX_STEPS": "ten"}, "ARTHA_MAX_STEPS"),
])
def test_bad_values_name_their_variable(pairs, var):
    with pytest.raises(BadInput) as e:
        env.from_lookup(pairs.get)
    assert e.value.field == var
    assert str(e.value).startswith(f"{var}: ")
    assert e.value.exit_code == 2


def test_from_env_reads_the_process_environment(monkeypatch):
    monkeypatch.setenv("EPOCHS", "7")
    monkeypatch.setenv("ARTHA_DATA_DIR", "/elsewhere")
    c = env.from_env()
    assert (c.epochs, c.data_dir) == (7, "/elsewhere")
    assert env.from_env({"EPOCHS": "2"}).epochs == 2


def test_model_file(tmp_path):
    assert env.read_model_file(str(tmp_path)) == env.ModelFile()
    assert env.read_model_file(str(tmp_path / "no-such-dir")) == env.ModelFile()
    (tmp_path / "config.json").write_text(json.dumps(
        {"kind": "mlp", "task": "classify", "hidden": [16], "classes": 2}))
    assert env.read_model_file(str(tmp_path)) == env.ModelFile("mlp", "classify", [16], 2)
    for body, needle in [
        ("{", "malformed model configuration"),
        ('{"kind": "mlp", "depth": 3}', "unknown field `depth`"),
        ('{"hidden": [16, "x"]}', "`hidden`"),
        ('{"kind": "cnn"}', "`kind`"),
        ('{"classes": -2}', "`classes`"),
        ("[]", "not a JSON object"),
    ]:
        (tmp_path / "config.json").write_text(body)
        with pytest.raises(BadInput, match=needle) as e:
            env.read_model_file(str(tmp_path))
        assert e.value.field == "config.json"
        assert str(tmp_path / "config.json") in str(e.value)
