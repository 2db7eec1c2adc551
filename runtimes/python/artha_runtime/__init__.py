"""artha_runtime: what a Python runtime needs to speak Artha's runtime
protocol (DESIGN §5) and produce records a verifier can check (DESIGN §6).

- `events`: the `$ARTHA_EVENTS` writer (`step`, `checkpoint`, `infer`,
  `log`, `complete`, `error`) and a checker for its lines;
- `digest`: canonical BLAKE3 tensor digests and named-tensor digests for
  numpy arrays and torch tensors, identical to the Rust side, and the
  sampled step digests of runtimes/PROOFS.md (`named_digest_at`);
- `checkpoint`: atomic writes, safetensors, the native runtime's
  checkpoint format, `torch.save` made atomic;
- `env`: the run configuration from the environment, errors naming the
  variable;
- `data`: CSV/NPY datasets read as the native runtime reads them;
- `rng`: the native runtime's counter-based random numbers (initial
  weights, shuffling, sampled digest positions);
- `lm`: the language model of runtimes/LM.md without a tensor library
  (configuration, tokenizers, examples, parameters, initialisation,
  sampling);
- `errors`: error types and their exit codes.

numpy is required; `blake3` (PyPI) is used when installed, else a
pure-Python BLAKE3; torch is optional.
"""

from .digest import (NamedDigest, batch_digest, is_full_step, named_digest, named_digest_at,
                     tensor_digest)
from .env import RunConfig, from_env
from .errors import ArthaError, BadInput, LossNotFinite, WriteFailed
from .events import EventWriter, open_events, parse_line, read_events

__version__ = "0.1.0"

__all__ = [
    "ArthaError", "BadInput", "EventWriter", "LossNotFinite", "NamedDigest", "RunConfig",
    "WriteFailed", "batch_digest", "from_env", "is_full_step", "named_digest", "named_digest_at",
    "open_events", "parse_line",
    "read_events", "tensor_digest",
]
