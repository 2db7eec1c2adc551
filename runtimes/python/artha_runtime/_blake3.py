"""A pure-Python BLAKE3 (hash mode, 32-byte output), used when the `blake3`
package is not installed — as in the Debian-built torch image, since Debian
bookworm ships no python3-blake3.

It follows the BLAKE3 specification and reference implementation
(https://github.com/BLAKE3-team/BLAKE3-specs): 1 KiB chunks of 64-byte
blocks, each compressed with 7 rounds of the ChaCha-like G function; chunk
chaining values are merged pairwise into a binary tree whose root is
compressed with the ROOT flag. The tests check it against the `blake3`
package on inputs that cross every block, chunk and tree boundary.

It is slow (about 1 MB/s): fine for small models; install the `blake3`
package for large ones. Only what `artha_runtime` needs is provided:
`Blake3()`, `update()`, `digest()`, `hexdigest()`, `copy()`.
"""

from __future__ import annotations

import struct

__all__ = ["Blake3"]

_IV = (
    0x6A09E667, 0xBB67AE85, 0x3C6EF372, 0xA54FF53A,
    0x510E527F, 0x9B05688C, 0x1F83D9AB, 0x5BE0CD19,
)
_CHUNK_START, _CHUNK_END, _PARENT, _ROOT = 1, 2, 4, 8
_BLOCK_LEN, _CHUNK_LEN = 64, 1024
_M = 0xFFFFFFFF

# The message word order of each of the 7 rounds: round r + 1 permutes
# round r's order by MSG_PERMUTATION = 2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12,
# 5, 9, 14, 15, 8.
_PERM = (2, 6, 3, 10, 7, 0, 4, 13, 1, 11, 12, 5, 9, 14, 15, 8)


def _schedule():
    order = list(range(16))
    rounds = []
    for _ in range(7):
        rounds.append(tuple(order))
        order = [order[p] for p in _PERM]
    return tuple(rounds)


_SCHEDULE = _schedule()
# G is applied to these state positions, with message words 2i and 2i + 1:
# the four columns, then the four diagonals.
_G_POSITIONS = (
    (0, 4, 8, 12), (1, 5, 9, 13), (2, 6, 10, 14), (3, 7, 11, 15),
    (0, 5, 10, 15), (1, 6, 11, 12), (2, 7, 8, 13), (3, 4, 9, 14),
)


def _compress(cv, block_words, counter, block_len, flags):
    """The compression function; returns all 16 output words."""
    s = [
        cv[0], cv[1], cv[2], cv[3], cv[4], cv[5], cv[6], cv[7],
        _IV[0], _IV[1], _IV[2], _IV[3],
        counter & _M, (counter >> 32) & _M, block_len, flags,
    ]
    for order in _SCHEDULE:
        for i, (a, b, c, d) in enumerate(_G_POSITIONS):
            mx = block_words[order[2 * i]]
            my = block_words[order[2 * i + 1]]
            va, vb, vc, vd = s[a], s[b], s[c], s[d]
            va = (va + vb + mx) & _M
            vd ^= va
            vd = ((vd >> 16) | (vd << 16)) & _M
            vc = (vc + vd) & _M
            vb ^= vc
            vb = ((vb >> 12) | (vb << 20)) & _M
            va = (va + vb + my) & _M
            vd ^= va
            vd = ((vd >> 8) | (vd << 24)) & _M
            vc = (vc + vd) & _M
            vb ^= vc
            vb = ((vb >> 7) | (vb << 25)) & _M
            s[a], s[b], s[c], s[d] = va, vb, vc, vd
    for i in range(8):
        s[i] ^= s[i + 8]
        s[i + 8] ^= cv[i]
    return s


_WORDS = struct.Struct("<16I")


def _words(block: bytes):
    if len(block) < _BLOCK_LEN:
        block = block + bytes(_BLOCK_LEN - len(block))
    return _WORDS.unpack(block)


class _Output:
    """What the next compression would take; the root takes the ROOT flag."""

    __slots__ = ("cv", "words", "counter", "block_len", "flags")

    def __init__(self, cv, words, counter, block_len, flags):
        self.cv, self.words = cv, words
        self.counter, self.block_len, self.flags = counter, block_len, flags

    def chaining_value(self):
        return _compress(self.cv, self.words, self.counter, self.block_len, self.flags)[:8]

    def root_bytes(self) -> bytes:
        out = _compress(self.cv, self.words, 0, self.block_len, self.flags | _ROOT)
        return struct.pack("<8I", *out[:8])


class _Chunk:
    """The state of the chunk being hashed."""

    __slots__ = ("cv", "counter", "block", "blocks_done")

    def __init__(self, key, counter):
        self.cv, self.counter = key, counter
        self.block = b""
        self.blocks_done = 0

    def length(self):
        return self.blocks_done * _BLOCK_LEN + len(self.block)

    def _start_flag(self):
        return _CHUNK_START if self.blocks_done == 0 else 0

    def update(self, data: memoryview):
        """Absorbs as much of `data` as fits in the chunk; returns the rest."""
        while data:
            if len(self.block) == _BLOCK_LEN:
                # A full block is compressed only once more input follows:
                # the chunk's last block takes CHUNK_END instead.
                self.cv = _compress(
                    self.cv, _words(self.block), self.counter, _BLOCK_LEN, self._start_flag()
                )[:8]
                self.blocks_done += 1
                self.block = b""
            take = min(_BLOCK_LEN - len(self.block), len(data))
            self.block += bytes(data[:take])
            data = data[take:]
        return data

    def output(self):
        return _Output(
            self.cv, _words(self.block), self.counter, len(self.block),
            self._start_flag() | _CHUNK_END,
        )


def _parent(left, right):
    return _Output(_IV, tuple(left) + tuple(right), 0, _BLOCK_LEN, _PARENT)


class Blake3:
    """Incremental BLAKE3 hasher (hash mode)."""

    def __init__(self, data: bytes | bytearray | memoryview = b""):
        self._chunk = _Chunk(_IV, 0)
        self._stack: list = []  # chaining values of completed subtrees
        if data:
            self.update(data)

    def _push(self, cv, total_chunks):
        # Merge completed subtrees: one merge per trailing zero bit of the
        # number of chunks completed so far.
        while total_chunks & 1 == 0:
            cv = _parent(self._stack.pop(), cv).chaining_value()
            total_chunks >>= 1
        self._stack.append(cv)

    def update(self, data) -> "Blake3":
        view = memoryview(data).cast("B")
        while view:
            if self._chunk.length() == _CHUNK_LEN:
                # A full chunk is finished only once more input follows.
                cv = self._chunk.output().chaining_value()
                total = self._chunk.counter + 1
                self._push(cv, total)
                self._chunk = _Chunk(_IV, total)
            take = min(_CHUNK_LEN - self._chunk.length(), len(view))
            self._chunk.update(view[:take])
            view = view[take:]
        return self

    def copy(self) -> "Blake3":
        other = Blake3()
        other._chunk = _Chunk(self._chunk.cv, self._chunk.counter)
        other._chunk.block = self._chunk.block
        other._chunk.blocks_done = self._chunk.blocks_done
        other._stack = list(self._stack)
        return other

    def digest(self) -> bytes:
        out = self._chunk.output()
        for cv in reversed(self._stack):
            out = _parent(cv, out.chaining_value())
        return out.root_bytes()

    def hexdigest(self) -> str:
        return self.digest().hex()
