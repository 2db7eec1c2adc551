"""The language model of the runtimes (`kind: "llama"`, runtimes/LM.md),
the parts that need no tensor library: its configuration and checks, the
byte and char tokenizers, the training examples, the parameter names and
shapes in canonical order, the seeded initialisation, the checkpoint's
model configuration, and the seeded sampling of inference.

The forward pass and training are in runtimes/torch/lm.py (PyTorch) and
runtimes/native/src/lm.rs (the native runtime).
"""

from __future__ import annotations

import math
import os
from typing import Dict, List, Optional, Sequence, Tuple

import numpy as np

from . import rng
from .digest import NamedDigest
from .errors import BadInput

KIND = "llama"

#: config.json fields (Hugging Face `LlamaConfig` names) and their defaults;
#: `vocab_size` and `intermediate_size` default from the tokenizer and width.
DEFAULTS = {
    "kind": KIND,
    "tokenizer": "byte",
    "vocab_size": None,
    "hidden_size": 64,
    "num_hidden_layers": 2,
    "num_attention_heads": 4,
    "intermediate_size": None,
    "max_position_embeddings": 128,
    "rms_norm_eps": 1e-5,
    "rope_theta": 10000.0,
    "tie_word_embeddings": True,
}
#: Stored in a checkpoint's model configuration besides the fields: the
#: char tokenizer's alphabet (a string, sorted by code point; null for byte).
ALPHABET = "alphabet"
#: Fields that are counts (positive integers).
_COUNTS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
           "intermediate_size", "max_position_embeddings")
#: Largest width, vocabulary or sequence length, and most layers (as the
#: native runtime's `lm::MAX_DIM`, `lm::MAX_LAYERS`).
MAX_DIM = 1 << 16
MAX_LAYERS = 256
#: The `lm` object of a checkpoint's model configuration, in the native
#: runtime's field order (`LmConfig`); `alphabet` only for `char`.
LM_KEYS = ("vocab_size", "hidden_size", "num_hidden_layers", "num_attention_heads",
           "intermediate_size", "max_position_embeddings", "rms_norm_eps", "rope_theta",
           "tie_word_embeddings", "tokenizer")
#: Uniform with standard deviation 0.02: bound f32(0.02·√3).
INIT_BOUND = np.float32(0.02 * math.sqrt(3.0))


def _is_int(v) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_num(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def parse_config(obj: dict, file: Optional[str] = None) -> dict:
    """The configuration of config.json's object `obj` with defaults filled
    in, except `vocab_size` for `char` (it needs the alphabet: see
    `resolve`). Every problem is a `BadInput` naming its field (exit 2)."""

    def bad(field, msg):
        return BadInput(msg, field=field, file=file)

    unknown = sorted(set(obj) - set(DEFAULTS))
    if unknown:
        raise bad(unknown[0], f"unknown field of a llama configuration (expected "
                              f"{', '.join(DEFAULTS)})")
    c = dict(DEFAULTS)
    c.update({k: v for k, v in obj.items() if v is not None})
    if c["kind"] != KIND:
        raise bad("kind", f"`{c['kind']}` is not a model kind of this configuration (\"llama\")")
    if c["tokenizer"] not in ("byte", "char"):
        raise bad("tokenizer", "must be \"byte\" or \"char\"")
    for k in _COUNTS:
        v = c[k]
        if v is None:
            continue
        if not _is_int(v) or v < 0:
            raise bad(k, f"must be a non-negative integer, got {v!r}")
        top = MAX_LAYERS if k == "num_hidden_layers" else MAX_DIM
        if not 1 <= v <= top:
            raise bad(k, f"{v} is not in 1..={top}")
    for k, low in (("rms_norm_eps", 0.0), ("rope_theta", 1.0)):
        v = c[k]
        if not _is_num(v) or not math.isfinite(v) or v <= low:
            raise bad(k, f"must be a finite number above {low:g}, got {v!r}")
        c[k] = float(v)
    if not isinstance(c["tie_word_embeddings"], bool):
        raise bad("tie_word_embeddings", "must be true or false")
    d, h = c["hidden_size"], c["num_attention_heads"]
    if d % h != 0:
        raise bad("num_attention_heads", f"hidden_size {d} is not a multiple of {h} heads")
    if (d // h) % 2 != 0:
        raise bad("num_attention_heads", f"the head width {d // h} (hidden_size / heads) is odd")
    if c["intermediate_size"] is None:
        c["intermediate_size"] = 4 * d
    if c["tokenizer"] == "byte":
        if c["vocab_size"] is None:
            c["vocab_size"] = 256
        if c["vocab_size"] < 256:
            raise bad("vocab_size", f"{c['vocab_size']} is below 256, the byte tokenizer's")
    return c


def resolve(c: dict, alphabet: Optional[str], file: Optional[str] = None) -> dict:
    """The full configuration: `vocab_size` for `char` from the alphabet
    (checked to be at least its size), the alphabet stored."""
    c = dict(c)
    if c["tokenizer"] == "char":
        if alphabet is None:
            raise BadInput("the char tokenizer needs its alphabet", field="tokenizer", file=file)
        if c["vocab_size"] is None:
            c["vocab_size"] = len(alphabet)
        if c["vocab_size"] < len(alphabet):
            raise BadInput(f"{c['vocab_size']} is below the alphabet's size {len(alphabet)}",
                           field="vocab_size", file=file)
        c[ALPHABET] = alphabet
    else:
        c[ALPHABET] = None
    return c


def checkpoint_config(c: dict) -> dict:
    """The model configuration a checkpoint's `model` metadata stores, as
    the native runtime's `ModelConfig::llama`: `kind`, `task` `classify`,
    `inputs` = `outputs` = the vocabulary, no hidden layers, and `lm` (the
    fields of config.json, plus `alphabet` for the char tokenizer)."""
    inner = {k: c[k] for k in LM_KEYS}
    if c["tokenizer"] == "char":
        inner[ALPHABET] = c[ALPHABET]
    return {"kind": KIND, "task": "classify", "inputs": c["vocab_size"],
            "outputs": c["vocab_size"], "hidden": [], "lm": inner}


def is_config(model: dict) -> bool:
    return isinstance(model, dict) and model.get("kind") == KIND


def from_checkpoint_config(model: dict, file: Optional[str] = None) -> dict:
    """The configuration (as `resolve` gives it) of a checkpoint's `model`
    metadata, checked as config.json is."""
    def corrupt(msg):
        return BadInput(f"metadata `model`: {msg}", field="checkpoint", file=file)

    if not isinstance(model, dict) or set(model) != {"kind", "task", "inputs", "outputs",
                                                     "hidden", "lm"}:
        raise corrupt("not a llama configuration (kind, task, inputs, outputs, hidden, lm)")
    inner = model["lm"]
    if not isinstance(inner, dict) or not set(LM_KEYS) <= set(inner) <= {*LM_KEYS, ALPHABET}:
        raise corrupt(f"`lm` is not a language model's configuration ({', '.join(LM_KEYS)})")
    alphabet = inner.get(ALPHABET)
    if inner["tokenizer"] == "char" and not isinstance(alphabet, str):
        raise corrupt("the char tokenizer's alphabet is missing")
    if inner["tokenizer"] != "char" and alphabet is not None:
        raise corrupt("only the char tokenizer has an alphabet")
    c = resolve(parse_config({k: inner[k] for k in LM_KEYS}, file), alphabet, file)
    if (model["task"], model["inputs"], model["outputs"], model["hidden"]) != \
            ("classify", c["vocab_size"], c["vocab_size"], []):
        raise corrupt("task, inputs, outputs and hidden do not match the language model")
    return c


def check_checkpoint_config(model: dict, file: str) -> dict:
    """A checkpoint's `model` metadata, checked; returned as stored."""
    from_checkpoint_config(model, file)
    return model


def same_architecture(a: dict, b: dict) -> Optional[str]:
    """The first field where two configurations differ, else None."""
    for k in (*DEFAULTS, ALPHABET):
        if a.get(k) != b.get(k):
            return k
    return None


# ---- tokenizers -------------------------------------------------------------


def alphabet_of(text: str) -> str:
    """The char tokenizer's alphabet: the distinct characters by code point."""
    return "".join(sorted(set(text)))


def decode_utf8(raw: bytes, path: str) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        raise BadInput(f"not UTF-8 (byte {e.start}), as the char tokenizer needs",
                       field="data", file=path) from None


def encode(c: dict, text: str) -> List[int]:
    """Token ids of `text` (`byte`: its UTF-8 bytes; `char`: alphabet ranks;
    a character outside the alphabet is an error naming it)."""
    if c["tokenizer"] == "byte":
        return list(text.encode("utf-8"))
    index = {ch: i for i, ch in enumerate(c[ALPHABET])}
    out = []
    for ch in text:
        if ch not in index:
            raise BadInput(f"character {ch!r} is not in the model's alphabet", field="prompts")
        out.append(index[ch])
    return out


def decode(c: dict, ids: Sequence[int]) -> str:
    """Text of token ids (`byte`: lossy UTF-8; `char`: the alphabet's
    characters; an id past the alphabet, possible when vocab_size is larger,
    decodes as U+FFFD)."""
    if c["tokenizer"] == "byte":
        return bytes(ids).decode("utf-8", errors="replace")
    a = c[ALPHABET]
    return "".join(a[i] if i < len(a) else "\ufffd" for i in ids)


# ---- data -------------------------------------------------------------------

MAX_TEXT_BYTES = 1 << 30


def find_text(directory: str, explicit: Optional[str], name: str = "train.txt") -> str:
    """The text in the data directory, as the native runtime finds it:
    ARTHA_DATA_FILE, else `name` (`train.txt`; inference: `prompts.txt`),
    else the directory's only `.txt` file."""
    from .data import check_relative

    if explicit is not None:
        check_relative("ARTHA_DATA_FILE", explicit)
        p = os.path.join(directory, explicit)
        if not os.path.isfile(p):
            raise BadInput("data file not found", field="ARTHA_DATA_FILE", file=p)
        return p
    p = os.path.join(directory, name)
    if os.path.isfile(p):
        return p
    try:
        entries = sorted(os.listdir(directory))
    except OSError as e:
        raise BadInput(f"cannot read the data directory: {e.strerror}", field="data",
                       file=directory) from None
    txts = [e for e in entries if e.endswith(".txt") and os.path.isfile(os.path.join(directory, e))]
    if len(txts) == 1:
        return os.path.join(directory, txts[0])
    if not txts:
        raise BadInput(f"no data file: looked for {name} or a single .txt file", field="data",
                       file=directory)
    raise BadInput(f"several .txt files and none named {name}: set ARTHA_DATA_FILE",
                   field="data", file=directory)


def read_bytes(path: str) -> bytes:
    try:
        if os.path.getsize(path) > MAX_TEXT_BYTES:
            raise BadInput(f"larger than {MAX_TEXT_BYTES} bytes", field="data", file=path)
        with open(path, "rb") as f:
            return f.read()
    except OSError as e:
        raise BadInput(f"cannot read the data file: {e.strerror}", field="data", file=path) from None


class Corpus:
    """The training examples: `x`, `y` i64 `[rows, L]`."""

    def __init__(self, tokens: np.ndarray, seq_len: int, source: str):
        n = int(tokens.shape[0])
        rows = (n - 1) // seq_len if n > 0 else 0
        if rows == 0:
            raise BadInput(f"too short: {n} tokens make no example of {seq_len + 1} tokens "
                           f"(ARTHA_SEQ_LEN {seq_len} + 1)", field="data", file=source)
        t = tokens.astype(np.int64)
        self.all_tokens = t
        self.x = np.ascontiguousarray(t[:rows * seq_len].reshape(rows, seq_len))
        self.y = np.ascontiguousarray(t[1:rows * seq_len + 1].reshape(rows, seq_len))
        self.tokens = n
        self.seq_len = seq_len
        self.source = source

    @property
    def rows(self) -> int:
        return int(self.x.shape[0])

    def digest(self) -> str:
        """What a checkpoint's `data_digest` records (as the native
        runtime): the named digest of `[("tokens", i64 [N]), ("seq_len",
        i64 [1])]`."""
        return (NamedDigest().push("tokens", self.all_tokens)
                .push("seq_len", np.array([self.seq_len], np.int64)).hexdigest())


def load_text(path: str, tokenizer: str) -> Tuple[np.ndarray, Optional[str]]:
    """`(tokens i64, alphabet or None)` of the training text."""
    raw = read_bytes(path)
    if tokenizer == "byte":
        return np.frombuffer(raw, dtype=np.uint8).astype(np.int64), None
    text = decode_utf8(raw, path)
    alphabet = alphabet_of(text)
    index = {ch: i for i, ch in enumerate(alphabet)}
    return np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text)), alphabet


def seq_len_of(c: dict, seq_len: Optional[int]) -> int:
    """ARTHA_SEQ_LEN (default max_position_embeddings), at most that."""
    L = c["max_position_embeddings"] if seq_len is None else seq_len
    if L > c["max_position_embeddings"]:
        raise BadInput(f"{L} is above max_position_embeddings {c['max_position_embeddings']}",
                       field="ARTHA_SEQ_LEN")
    return L


# ---- parameters -------------------------------------------------------------


def param_shapes(c: dict) -> List[Tuple[str, Tuple[int, ...]]]:
    """`(name, shape)` of every parameter, in canonical order."""
    V, D, F = c["vocab_size"], c["hidden_size"], c["intermediate_size"]
    out = [("model.embed_tokens.weight", (V, D))]
    for i in range(c["num_hidden_layers"]):
        p = f"model.layers.{i}."
        out += [(p + "input_layernorm.weight", (D,)),
                (p + "self_attn.q_proj.weight", (D, D)),
                (p + "self_attn.k_proj.weight", (D, D)),
                (p + "self_attn.v_proj.weight", (D, D)),
                (p + "self_attn.o_proj.weight", (D, D)),
                (p + "post_attention_layernorm.weight", (D,)),
                (p + "mlp.gate_proj.weight", (F, D)),
                (p + "mlp.up_proj.weight", (F, D)),
                (p + "mlp.down_proj.weight", (D, F))]
    out.append(("model.norm.weight", (D,)))
    if not c["tie_word_embeddings"]:
        out.append(("lm_head.weight", (V, D)))
    return out


def param_names(c: dict) -> List[str]:
    return [n for n, _ in param_shapes(c)]


def is_norm(name: str) -> bool:
    return name.endswith("layernorm.weight") or name == "model.norm.weight"


def initial_params(c: dict, seed: int) -> Dict[str, np.ndarray]:
    """The initial parameters (float32) for `seed`: norms 1.0, every other
    element `(2·u − 1) · f32(0.02·√3)`, `u = Stream(seed, "init", p).f32_at(n)`."""
    out = {}
    for p, (name, shape) in enumerate(param_shapes(c)):
        if is_norm(name):
            out[name] = np.ones(shape, np.float32)
            continue
        n = int(np.prod(shape, dtype=np.int64))
        u = rng.Stream(seed, "init", p).f32_at(np.arange(n, dtype=np.uint64))
        out[name] = ((u * np.float32(2.0) - np.float32(1.0)) * INIT_BOUND).astype(
            np.float32).reshape(shape)
    return out


# ---- inference --------------------------------------------------------------


def prompt_tokens(c: dict, prompt: str) -> List[int]:
    """A prompt's context: its tokens, truncated on the left to the last
    `max_position_embeddings − 1`; the empty prompt is token 0 (`byte`) or
    the alphabet's first character (`char`, also id 0)."""
    ids = encode(c, prompt)
    if not ids:
        ids = [0]
    keep = c["max_position_embeddings"] - 1
    return ids[-keep:] if keep > 0 else []


def pick(logits: np.ndarray, temperature: float, u: Optional[float]) -> int:
    """The next token from f32 logits: argmax (lowest id on ties) at
    temperature 0, else the inverse CDF of softmax(logits / T) at `u`, in
    the native runtime's arithmetic (`lm::pick`): `e_i = exp((z_i − max) / T)`
    in f32, summed in f64 in id order; the first id whose running sum
    exceeds `u · Σ e`."""
    if temperature <= 0:
        return int(np.argmax(logits))  # numpy's argmax takes the first maximum
    z = np.asarray(logits, np.float32)
    e = np.exp((z - z.max()) / np.float32(temperature)).astype(np.float64)
    acc = np.cumsum(e)  # sequential, in id order
    target = float(np.float32(u)) * float(acc[-1])
    i = int(np.searchsorted(acc, target, side="right"))
    return min(i, len(acc) - 1)


def sample_u(seed: int, prompt_index: int, i: int) -> float:
    """`u` of the i-th new token of prompt `prompt_index`."""
    return float(rng.Stream(seed, "sample", prompt_index).f32_at(i))
