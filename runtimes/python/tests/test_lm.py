"""The language model's configuration, tokenizers, examples, parameters,
initialisation and sampling (artha_runtime.lm, runtimes/LM.md)."""
import json

import numpy as np
import pytest

from artha_runtime import checkpoint, env, lm, rng
from artha_runtime.digest import named_digest
from artha_runtime.errors import BadInput


def cfg(**kw):
    return lm.parse_config({"kind": "llama", **kw})


def test_defaults():
    c = cfg()
    assert (c["tokenizer"], c["vocab_size"], c["hidden_size"], c["num_hidden_layers"],
            c["num_attention_heads"], c["intermediate_size"], c["max_position_embeddings"],
            c["rms_norm_eps"], c["rope_theta"], c["tie_word_embeddings"]) == \
        ("byte", 256, 64, 2, 4, 256, 128, 1e-5, 10000.0, True)
    assert cfg(hidden_size=32)["intermediate_size"] == 128
    ch = lm.resolve(cfg(tokenizer="char"), "abc")
    assert ch["vocab_size"] == 3 and ch["alphabet"] == "abc"
    assert lm.resolve(cfg(), None)["alphabet"] is None


@pytest.mark.parametrize("obj,field", [
    ({"kind": "gpt"}, "kind"),
    ({"num_hidden_layers": 0}, "num_hidden_layers"),
    ({"num_attention_heads": 0}, "num_attention_heads"),
    ({"hidden_size": 0}, "hidden_size"),
    ({"vocab_size": 0}, "vocab_size"),
    ({"hidden_size": 30, "num_attention_heads": 4}, "num_attention_heads"),  # D % H
    ({"hidden_size": 12, "num_attention_heads": 4}, "num_attention_heads"),  # odd head width 3
    ({"vocab_size": 255}, "vocab_size"),  # byte needs 256
    ({"tokenizer": "bpe"}, "tokenizer"),
    ({"rms_norm_eps": -1}, "rms_norm_eps"),
    ({"rope_theta": 1.0}, "rope_theta"),
    ({"hidden_size": 1 << 17}, "hidden_size"),
    ({"num_hidden_layers": 257}, "num_hidden_layers"),
    ({"rope_theta": "big"}, "rope_theta"),
    ({"tie_word_embeddings": 1}, "tie_word_embeddings"),
    ({"hidden_size": 2.5}, "hidden_size"),
    ({"num_layers": 2}, "num_layers"),
])
def test_bad_configurations_name_the_field(obj, field):
    with pytest.raises(BadInput) as e:
        lm.parse_config({"kind": "llama", **obj}, "/model/config.json")
    assert e.value.field == field and e.value.exit_code == 2
    assert str(e.value).startswith(field + ":")


def test_char_vocabulary_and_sequence_length_checks():
    with pytest.raises(BadInput) as e:
        lm.resolve(cfg(tokenizer="char", vocab_size=2), "abc")
    assert e.value.field == "vocab_size"
    c = cfg(max_position_embeddings=16)
    assert lm.seq_len_of(c, None) == 16 and lm.seq_len_of(c, 8) == 8
    with pytest.raises(BadInput) as e:
        lm.seq_len_of(c, 17)
    assert e.value.field == "ARTHA_SEQ_LEN"


def test_model_file_and_environment_select_the_lm(tmp_path):
    (tmp_path / "config.json").write_text(json.dumps({"kind": "llama", "hidden_size": 32}))
    f = env.read_model_file(str(tmp_path))
    assert f.kind == "llama" and f.lm == {"kind": "llama", "hidden_size": 32}
    (tmp_path / "config.json").write_text(json.dumps({"hidden_size": 32}))
    assert env.read_model_file(str(tmp_path), "llama").lm == {"hidden_size": 32}
    with pytest.raises(BadInput, match="hidden_size"):
        env.read_model_file(str(tmp_path))  # an MLP config has no hidden_size
    c = env.from_env({"ARTHA_MODEL_KIND": "llama", "ARTHA_SEQ_LEN": "8",
                      "ARTHA_MAX_NEW_TOKENS": "5", "ARTHA_TEMPERATURE": "0.7"})
    assert (c.kind, c.seq_len, c.max_new_tokens, c.temperature) == ("llama", 8, 5, 0.7)
    for var, v in (("ARTHA_SEQ_LEN", "0"), ("ARTHA_TEMPERATURE", "-1"),
                   ("ARTHA_TEMPERATURE", "nan")):
        with pytest.raises(BadInput) as e:
            env.from_env({var: v})
        assert e.value.field == var


def test_tokenizers(tmp_path):
    p = tmp_path / "t.txt"
    p.write_bytes("héllo".encode())
    toks, alpha = lm.load_text(str(p), "byte")
    assert alpha is None and toks.tolist() == list("héllo".encode())
    toks, alpha = lm.load_text(str(p), "char")
    assert alpha == "hloé" and toks.tolist() == [0, 3, 1, 1, 2]  # 'é' sorts after ASCII
    c = lm.resolve(cfg(tokenizer="char"), alpha)
    assert lm.encode(c, "hol") == [0, 2, 1] and lm.decode(c, [0, 3]) == "hé"
    with pytest.raises(BadInput, match="'z'"):
        lm.encode(c, "z")
    b = lm.resolve(cfg(), None)
    assert lm.decode(b, [0xC3]) == "\ufffd"  # lossy for byte
    p.write_bytes(b"\xff\xfe")
    with pytest.raises(BadInput) as e:
        lm.load_text(str(p), "char")
    assert e.value.file == str(p) and "UTF-8" in str(e.value)


def test_examples_and_batches():
    toks = np.arange(23, dtype=np.int64)
    ds = lm.Corpus(toks, 5, "t")
    assert ds.digest() == named_digest([("tokens", toks), ("seq_len", np.array([5]))])
    assert ds.rows == 4  # (23 - 1) // 5
    assert ds.x.dtype == np.int64 and ds.x.shape == (4, 5)
    assert ds.x[2].tolist() == [10, 11, 12, 13, 14] and ds.y[2].tolist() == [11, 12, 13, 14, 15]
    assert lm.Corpus(np.arange(6), 5, "t").rows == 1
    with pytest.raises(BadInput, match="too short"):
        lm.Corpus(np.arange(5), 5, "t")


def test_parameter_names_order_and_shapes():
    c = cfg(hidden_size=8, num_attention_heads=2, num_hidden_layers=2, intermediate_size=12)
    shapes = lm.param_shapes(c)
    assert shapes[0] == ("model.embed_tokens.weight", (256, 8))
    assert [n for n, _ in shapes[1:10]] == [
        "model.layers.0.input_layernorm.weight", "model.layers.0.self_attn.q_proj.weight",
        "model.layers.0.self_attn.k_proj.weight", "model.layers.0.self_attn.v_proj.weight",
        "model.layers.0.self_attn.o_proj.weight", "model.layers.0.post_attention_layernorm.weight",
        "model.layers.0.mlp.gate_proj.weight", "model.layers.0.mlp.up_proj.weight",
        "model.layers.0.mlp.down_proj.weight"]
    assert dict(shapes)["model.layers.1.mlp.down_proj.weight"] == (8, 12)
    assert dict(shapes)["model.layers.1.mlp.gate_proj.weight"] == (12, 8)
    assert shapes[-1] == ("model.norm.weight", (8,)) and len(shapes) == 20
    untied = lm.param_shapes(cfg(hidden_size=8, num_attention_heads=2, tie_word_embeddings=False))
    assert untied[-1] == ("lm_head.weight", (256, 8))


def test_initialisation():
    c = cfg(hidden_size=8, num_attention_heads=2, num_hidden_layers=1, intermediate_size=12)
    a, b = lm.initial_params(c, 7), lm.initial_params(c, 7)
    assert list(a) == lm.param_names(c)
    assert all(np.array_equal(a[n], b[n]) for n in a)
    assert not np.array_equal(a["model.embed_tokens.weight"],
                              lm.initial_params(c, 8)["model.embed_tokens.weight"])
    for p, (name, arr) in enumerate(a.items()):
        assert arr.dtype == np.float32
        if lm.is_norm(name):
            assert (arr == 1.0).all()
            continue
        u = rng.Stream(7, "init", p).f32_at(np.arange(arr.size, dtype=np.uint64))
        want = (np.float32(2) * u - np.float32(1)) * np.float32(0.02 * 3 ** 0.5)
        assert np.array_equal(arr.reshape(-1), want.astype(np.float32)), name
        assert np.abs(arr).max() < 0.0347
    e = a["model.embed_tokens.weight"]
    assert abs(float(e.std()) - 0.02) < 0.002


def test_checkpoint_round_trip(tmp_path):
    c = lm.resolve(cfg(tokenizer="char", hidden_size=8, num_attention_heads=2,
                       num_hidden_layers=1), "ab c")
    mc = lm.checkpoint_config(c)
    params = lm.initial_params(c, 1)
    path = str(tmp_path / "lm.safetensors")
    wd = checkpoint.save(path, mc, params)
    ck = checkpoint.load(path)
    assert ck["weights_digest"] == wd and ck["model"] == mc
    assert mc == {"kind": "llama", "task": "classify", "inputs": 4, "outputs": 4, "hidden": [],
                  "lm": {"vocab_size": 4, "hidden_size": 8, "num_hidden_layers": 1,
                         "num_attention_heads": 2, "intermediate_size": 32,
                         "max_position_embeddings": 128, "rms_norm_eps": 1e-5,
                         "rope_theta": 10000.0, "tie_word_embeddings": True,
                         "tokenizer": "char", "alphabet": "ab c"}}
    assert lm.from_checkpoint_config(mc) == c
    byte = lm.checkpoint_config(lm.resolve(cfg(), None))
    assert "alphabet" not in byte["lm"] and byte["inputs"] == 256
    assert list(ck["params"]) == lm.param_names(c)
    # A tensor of the wrong shape is refused.
    bad = dict(params)
    bad["model.norm.weight"] = np.ones(9, np.float32)
    checkpoint.save(path, mc, bad)
    with pytest.raises(BadInput, match="model.norm.weight"):
        checkpoint.load(path)


def test_picking_tokens():
    z = np.array([0.5, 2.0, 2.0, -1.0], np.float32)
    assert lm.pick(z, 0.0, None) == 1  # argmax, lowest id on ties
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    cdf = np.cumsum(p)
    assert lm.pick(z, 1.0, 0.0) == 0
    assert lm.pick(z, 1.0, float(cdf[0]) + 1e-6) == 1
    assert lm.pick(z, 1.0, float(cdf[1]) + 1e-6) == 2
    assert lm.pick(z, 1.0, 0.9999999) == 3
    u = lm.sample_u(3, 1, 4)
    assert u == float(rng.Stream(3, "sample", 1).f32_at(4))
    c = lm.resolve(cfg(max_position_embeddings=4), None)
    assert lm.prompt_tokens(c, "") == [0] and lm.prompt_tokens(c, "abcdef") == list(b"def")
