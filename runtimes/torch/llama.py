"""The language model of runtimes/LM.md (`kind: "llama"`) in PyTorch:
the model, its trainer (driven by train.py's loop, with train.py's
optimizer code) and inference (`ARTHA_MODE=infer`).

The configuration, tokenizers, examples, parameter names, initialisation
and sampling are in `artha_runtime.lm` (shared with the tests). The
forward pass is written out as the specification states it (Debian's torch
1.13 has no nn.RMSNorm, and its fused kernels would sum in other orders):

    x = embed[tokens]
    per layer: h = rmsnorm(x); q, k, v = h·Wᵀ; rotate-half RoPE on q, k;
               a = softmax(q·kᵀ/√hd + causal mask)·v; x += concat(a)·Woᵀ;
               h = rmsnorm(x); x += (silu(h·Wgᵀ) ⊙ h·Wuᵀ)·Wdᵀ
    logits = rmsnorm(x)·Wheadᵀ (Whead = embed when tied); mean cross-entropy.
"""

from __future__ import annotations

import json
import math
import os

import numpy as np

from artha_runtime import checkpoint, lm
from artha_runtime.digest import is_full_step, named_digest_at, tensor_digest
from artha_runtime.errors import BadInput, LossNotFinite, WriteFailed


def build_model(torch, c: dict):
    """An nn.Module whose named_parameters() / state_dict() are the
    specification's names, in its order."""
    nn, F = torch.nn, torch.nn.functional
    D, H = c["hidden_size"], c["num_attention_heads"]
    hd = D // H
    F_, V = c["intermediate_size"], c["vocab_size"]
    eps = c["rms_norm_eps"]

    def linear(i, o):
        return nn.Linear(i, o, bias=False)

    class RMSNorm(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.ones(D))

        def forward(self, x):
            ms = (x * x).mean(dim=-1, keepdim=True)
            return x * (1.0 / torch.sqrt(ms + eps)) * self.weight

    class Attention(nn.Module):
        def __init__(self):
            super().__init__()
            self.q_proj, self.k_proj = linear(D, D), linear(D, D)
            self.v_proj, self.o_proj = linear(D, D), linear(D, D)

        def forward(self, h, cos, sin, mask):
            B, L, _ = h.shape

            def heads(t):
                return t.view(B, L, H, hd).transpose(1, 2)  # [B, H, L, hd]

            def rope(t):
                a, b = t[..., :hd // 2], t[..., hd // 2:]
                return torch.cat((a * cos - b * sin, b * cos + a * sin), dim=-1)

            q, k, v = heads(self.q_proj(h)), heads(self.k_proj(h)), heads(self.v_proj(h))
            q, k = rope(q), rope(k)
            s = torch.matmul(q, k.transpose(-1, -2)) / math.sqrt(hd)
            s = s.masked_fill(mask, float("-inf"))
            a = torch.matmul(torch.softmax(s, dim=-1), v)
            return self.o_proj(a.transpose(1, 2).reshape(B, L, D))

    class MLP(nn.Module):
        def __init__(self):
            super().__init__()
            self.gate_proj, self.up_proj, self.down_proj = linear(D, F_), linear(D, F_), linear(F_, D)

        def forward(self, h):
            g = self.gate_proj(h)
            return self.down_proj(g / (1.0 + torch.exp(-g)) * self.up_proj(h))

    class Layer(nn.Module):
        def __init__(self):
            super().__init__()
            self.input_layernorm = RMSNorm()
            self.self_attn = Attention()
            self.post_attention_layernorm = RMSNorm()
            self.mlp = MLP()

        def forward(self, x, cos, sin, mask):
            x = x + self.self_attn(self.input_layernorm(x), cos, sin, mask)
            return x + self.mlp(self.post_attention_layernorm(x))

    class Inner(nn.Module):
        def __init__(self):
            super().__init__()
            self.embed_tokens = nn.Embedding(V, D)
            self.layers = nn.ModuleList(Layer() for _ in range(c["num_hidden_layers"]))
            self.norm = RMSNorm()

    # RoPE tables for positions 0..max_position_embeddings, computed in f64
    # (inv_freq_j = θ^(−2j/hd)) and rounded once to the model's dtype.
    P = c["max_position_embeddings"]
    j = np.arange(hd // 2, dtype=np.float64)
    inv_freq = c["rope_theta"] ** (-2.0 * j / hd)
    ang = np.arange(P, dtype=np.float64)[:, None] * inv_freq[None, :]
    cos64, sin64 = torch.from_numpy(np.cos(ang)), torch.from_numpy(np.sin(ang))

    class LlamaLM(nn.Module):
        def __init__(self):
            super().__init__()
            self.model = Inner()
            if not c["tie_word_embeddings"]:
                self.lm_head = linear(D, V)
            self._tables = {}

        def tables(self, L, like):
            key = (L, like.dtype, like.device)
            if key not in self._tables:
                cos = cos64[:L].to(dtype=like.dtype, device=like.device)
                sin = sin64[:L].to(dtype=like.dtype, device=like.device)
                mask = torch.ones(L, L, dtype=torch.bool, device=like.device).triu(1)
                self._tables = {key: (cos, sin, mask)}
            return self._tables[key]

        def forward(self, tokens):
            """Logits `[B, L, V]` of i64 tokens `[B, L]`."""
            x = self.model.embed_tokens(tokens)
            cos, sin, mask = self.tables(tokens.shape[1], x)
            for layer in self.model.layers:
                x = layer(x, cos, sin, mask)
            h = self.model.norm(x)
            head = self.model.embed_tokens.weight if c["tie_word_embeddings"] else self.lm_head.weight
            return F.linear(h, head)

    return LlamaLM()


def loss_of(torch, model, x, y):
    """The mean cross-entropy over the batch's B·L positions."""
    logits = model(x)
    return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), y.reshape(-1))


def load_params(torch, model, params: dict) -> None:
    with torch.no_grad():
        for name, p in model.named_parameters():
            p.copy_(torch.from_numpy(np.ascontiguousarray(params[name], np.float32)))


# ---- training -----------------------------------------------------------------


def _mismatch(what, have, want) -> BadInput:
    return BadInput(f"the checkpoint is of another {what}: it has {have!r}, this job has {want!r}",
                    field="checkpoint")


def check_explicit(have: dict, obj: dict) -> None:
    """A checkpoint's configuration must agree with every field config.json sets."""
    for k, v in obj.items():
        if k in ("kind",) or v is None:
            continue
        if have.get(k) != v and not (isinstance(v, (int, float)) and not isinstance(v, bool)
                                     and isinstance(have.get(k), float) and float(v) == have[k]):
            raise _mismatch(f"architecture (`{k}`)", have.get(k), v)


def tokens_for(c: dict, path: str):
    """Training tokens of the text at `path` under configuration `c` (a
    checkpoint's alphabet for `char` when `c` has one)."""
    if c["tokenizer"] == "byte" or c.get(lm.ALPHABET) is None:
        return lm.load_text(path, c["tokenizer"])
    text = lm.decode_utf8(lm.read_bytes(path), path)
    index = {ch: i for i, ch in enumerate(c[lm.ALPHABET])}
    missing = sorted(set(text) - set(index))
    if missing:
        raise BadInput(f"character {missing[0]!r} of the text is not in the checkpoint's "
                       "alphabet", field="data", file=path)
    return np.fromiter((index[ch] for ch in text), dtype=np.int64, count=len(text)), c[lm.ALPHABET]


class Trainer:
    """The LM, its optimizer, its examples and its position (global step);
    the interface train.py's loop drives (as its MLP Trainer)."""

    def __init__(self, torch, cfg, file, base):
        self.torch, self.cfg = torch, cfg
        obj = file.lm or {}
        wanted = lm.parse_config(obj, file.path)
        init_path = os.path.join(cfg.model_dir, "model.safetensors")
        path = base.resume_path(cfg)
        ck = None
        if path is not None:
            ck = checkpoint.load(path)
            if ck["train"] is None:
                raise BadInput("the checkpoint holds weights only, no training state",
                               field="ARTHA_RESUME")
        elif os.path.isfile(init_path):
            ck = checkpoint.load(init_path)
            path = init_path
        if ck is not None and not lm.is_config(ck["model"]):
            raise _mismatch("model kind", ck["model"].get("kind"), "llama")
        text = lm.find_text(cfg.data_dir, cfg.data_file)
        if ck is not None:
            c = lm.from_checkpoint_config(ck["model"], path)
            check_explicit(c, obj)
            tokens, _ = tokens_for(c, text)
        else:
            tokens, alphabet = lm.load_text(text, wanted["tokenizer"])
            c = lm.resolve(wanted, alphabet, file.path)
        self.c, self.mc = c, lm.checkpoint_config(c)
        self.seq_len = lm.seq_len_of(c, cfg.seq_len)
        self.ds = lm.Corpus(tokens, self.seq_len, text)
        self.data_digest = self.ds.digest()
        self.steps_per_epoch = -(-self.ds.rows // cfg.batch_size)
        self.total_steps = cfg.epochs * self.steps_per_epoch
        self.started_from = path if ck is not None else None
        step, self.opt_t, saved_opt = 0, 0, None
        if cfg.resume is not None:
            st = ck["train"]
            saved = base.env.OptimizerConfig(**st["optimizer"])
            for what, have, want in (("run (seed)", st["seed"], cfg.seed),
                                     ("run (batch size)", st["batch_size"], cfg.batch_size),
                                     ("run (optimizer settings)", saved, cfg.optimizer),
                                     ("dataset", st["data_digest"], self.data_digest),
                                     ("dataset (rows)", st["rows"], self.ds.rows)):
                if have != want:
                    raise _mismatch(what, have, want)
            step, self.opt_t, saved_opt = int(st["step"]), int(st["optimizer_t"]), ck["optimizer"]
        params = ck["params"] if ck is not None else lm.initial_params(c, cfg.seed)
        self.step = step
        self.device = torch.device(cfg.device)
        self.model = build_model(torch, c).to(self.device)
        load_params(torch, self.model, params)
        self.opt = base.make_optimizer(torch, self.model, cfg.optimizer)
        if saved_opt is not None:
            base.restore_optimizer(torch, self.opt, self.model, cfg.optimizer, self.opt_t, saved_opt)
        self.base = base
        self.x = torch.from_numpy(self.ds.x).to(self.device)
        self.y = torch.from_numpy(self.ds.y).to(self.device)
        self._perm = None

    # -- what train.py's loop and banner read --
    def describe(self) -> str:
        c = self.c
        return (f"llama {c['num_hidden_layers']}×{c['hidden_size']} ({self.n_params()} parameters, "
                f"{c['tokenizer']} tokens, vocabulary {c['vocab_size']}) on {self.ds.rows} "
                f"examples of {self.seq_len}+1 tokens of {self.ds.source}")

    def n_params(self) -> int:
        return sum(p.numel() for p in self.model.parameters())

    def banner_model(self) -> str:
        c = self.c
        return (f"llama L={c['num_hidden_layers']} D={c['hidden_size']} H={c['num_attention_heads']} "
                f"F={c['intermediate_size']} V={c['vocab_size']} "
                f"{'tied' if c['tie_word_embeddings'] else 'untied'}, seq {self.seq_len}")

    def epoch_of(self, step: int) -> int:
        return (max(step, 1) - 1) // self.steps_per_epoch

    def batch_rows(self, k: int):
        epoch = self.epoch_of(k)
        if self._perm is None or self._perm[0] != epoch:
            from artha_runtime import rng

            self._perm = (epoch, rng.permutation(self.cfg.seed, epoch, self.ds.rows))
        b = (k - 1) % self.steps_per_epoch
        start = b * self.cfg.batch_size
        return self._perm[1][start:start + self.cfg.batch_size]

    def advance(self) -> dict:
        torch = self.torch
        k = self.step + 1
        full = is_full_step(k, self.cfg.proof_window, self.total_steps)
        seed = self.cfg.seed
        idx = torch.from_numpy(self.batch_rows(k)).to(self.device)
        xb, yb = self.x.index_select(0, idx), self.y.index_select(0, idx)
        batch = named_digest_at([("x", xb), ("y", yb)], seed, k, full)
        self.opt.zero_grad(set_to_none=False)
        loss = loss_of(torch, self.model, xb, yb)
        value = float(loss.item())
        if not math.isfinite(value):
            raise LossNotFinite(f"the loss is not finite ({value}) at step {k}: training diverged "
                                "(lower LEARNING_RATE?)", field="loss")
        loss.backward()
        grads = named_digest_at([(n, p.grad) for n, p in self.model.named_parameters()],
                                seed, k, full)
        self.opt.step()
        self.opt_t += 1
        self.step = k
        weights = named_digest_at(self.model.state_dict(), seed, k, full)
        return {"step": k, "epoch": self.epoch_of(k), "loss": value, "grad_digest": grads,
                "weight_digest": weights, "batch_digest": batch, "rows": int(idx.shape[0]),
                "correct": 0}

    def save(self, path: str) -> str:
        oc = self.cfg.optimizer
        train = {
            "step": self.step, "epoch": self.epoch_of(self.step), "seed": self.cfg.seed,
            "batch_size": self.cfg.batch_size, "optimizer": oc.to_json(),
            "optimizer_t": self.opt_t, "data_digest": self.data_digest, "rows": self.ds.rows,
        }
        params = {n: t.detach().cpu().numpy() for n, t in self.model.state_dict().items()}
        return checkpoint.save(path, self.mc, params,
                               (oc.state_slots(),
                                self.base.optimizer_state(self.opt, self.model, oc), train))


# ---- inference ----------------------------------------------------------------


def weights_path(cfg) -> str:
    """ARTHA_WEIGHTS, else model.safetensors, final.safetensors, or the model
    directory's only .safetensors file (as the native runtime)."""
    from artha_runtime import data

    if cfg.weights is not None:
        data.check_relative("ARTHA_WEIGHTS", cfg.weights)
        return os.path.join(cfg.model_dir, cfg.weights)
    for n in ("model.safetensors", "final.safetensors"):
        p = os.path.join(cfg.model_dir, n)
        if os.path.isfile(p):
            return p
    try:
        found = sorted(e for e in os.listdir(cfg.model_dir) if e.endswith(".safetensors"))
    except OSError as e:
        raise BadInput(f"cannot read the model directory: {e.strerror}", field="model",
                       file=cfg.model_dir) from None
    if len(found) == 1:
        return os.path.join(cfg.model_dir, found[0])
    if not found:
        raise BadInput("no model weights: expected model.safetensors, final.safetensors or one "
                       ".safetensors file", field="model", file=cfg.model_dir)
    raise BadInput("several .safetensors files in the model directory: name one",
                   field="ARTHA_WEIGHTS")


def read_prompts(c: dict, path: str):
    """`[(prompt token ids, context ids)]`, one per line (a final newline
    ends the last line; it does not add an empty prompt). The context is
    the prompt truncated on the left to `max_position_embeddings − 1`
    tokens, token 0 for the empty prompt."""
    raw = lm.read_bytes(path)
    lines = raw.split(b"\n")
    if not raw or raw.endswith(b"\n"):
        lines.pop()
    out = []
    for n, line in enumerate(lines):
        if c["tokenizer"] == "byte":
            ids = list(line)
        else:
            text = lm.decode_utf8(line, path)
            try:
                ids = lm.encode(c, text)
            except BadInput as e:
                raise BadInput(f"{e.message} (line {n + 1})", field="data", file=path) from None
        ctx = ids or [0]  # the empty prompt starts from token 0
        keep = c["max_position_embeddings"] - 1
        out.append((ids, ctx[-keep:] if keep > 0 else []))
    return out


def generate(torch, model, c: dict, ids, new_tokens: int, temperature: float, seed: int,
             prompt_index: int, device):
    """`new_tokens` tokens after `ids` (greedy at temperature 0, else seeded)."""
    P = c["max_position_embeddings"]
    seq = list(ids)
    out = []
    with torch.no_grad():
        for i in range(new_tokens):
            ctx = torch.tensor([seq[-P:]], dtype=torch.int64, device=device)
            logits = model(ctx)[0, -1].float().cpu().numpy()
            if not np.isfinite(logits).all():
                raise BadInput(f"the model produced a non-finite logit for prompt {prompt_index + 1}",
                               field="outputs")
            u = lm.sample_u(seed, prompt_index, i) if temperature > 0 else None
            t = lm.pick(logits, temperature, u)
            seq.append(t)
            out.append(t)
    return out


def infer(torch, cfg, events, say) -> None:
    wpath = weights_path(cfg)
    ck = checkpoint.load(wpath)
    if not lm.is_config(ck["model"]):
        raise BadInput("the weights are not a language model's (this runtime infers only with "
                       "`kind: \"llama\"`; MLP inference runs on the native runtime)",
                       field="ARTHA_MODE", file=wpath)
    c = lm.from_checkpoint_config(ck["model"], wpath)
    prompts_path = lm.find_text(cfg.data_dir, cfg.data_file, name="prompts.txt")
    prompts = read_prompts(c, prompts_path)
    try:
        os.makedirs(cfg.output_dir, exist_ok=True)
    except OSError as e:
        raise WriteFailed(f"the output directory is not writable: {e.strerror}",
                          file=cfg.output_dir) from None
    device = torch.device(cfg.device)
    model = build_model(torch, c).to(device)
    load_params(torch, model, ck["params"])
    model.eval()
    events.log(f"generating {cfg.max_new_tokens} tokens per prompt from {prompts_path} with "
               f"{wpath} (temperature {cfg.temperature})")
    lines = []
    for n, (ids, ctx) in enumerate(prompts):
        gen = generate(torch, model, c, ctx, cfg.max_new_tokens, cfg.temperature, cfg.seed, n,
                       device)
        # As the native runtime: the prompt's own tokens in, the new ones out.
        events.infer(tensor_digest(np.asarray(ids, np.int64)),
                     tensor_digest(np.asarray(gen, np.int64)))
        # Formatted as the native runtime writes it (keys sorted, compact).
        lines.append(json.dumps({"prompt": lm.decode(c, ids), "completion": lm.decode(c, gen),
                                 "tokens": gen}, ensure_ascii=False, sort_keys=True,
                                separators=(",", ":")))
        say(f"prompt {n + 1}/{len(prompts)}: {len(ids)} tokens -> {len(gen)} new")
    out = os.path.join(cfg.output_dir, "generations.jsonl")
    checkpoint.write_atomic(out, ("".join(line + "\n" for line in lines)).encode("utf-8"))
    events.complete(0, ck["weights_digest"])
    say(f"generations written: {out}")
