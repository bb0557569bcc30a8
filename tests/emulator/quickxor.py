"""quickXorHash (OneDrive / SharePoint), GRAPH-API.md §5.6.

The hash XORs byte i at bit offset (i*11) mod 160, so bytes whose stream
positions are equal modulo 160 land on the same bits: QuickXor folds the
stream into a 160-byte buffer of per-position XORs (with big-integer XOR,
fast in CPython) and rotates the 160 folded bytes into the 160-bit
accumulator only when the digest is asked for.
"""
import base64

WIDTH = 160
_MASK = (1 << WIDTH) - 1


def rotate_folded(folded, offset):
    """The fold of bytes placed OFFSET bytes later in the stream: byte j of
    the 160-byte fold moves to (j + offset) mod 160."""
    bits = (offset % WIDTH) * 8
    if not bits:
        return folded
    total = WIDTH * 8
    return ((folded << bits) | (folded >> (total - bits))) & \
        ((1 << total) - 1)


def fold_bytes(buf):
    """Fold (see QuickXor.folded) of BUF placed at stream offset 0; len(BUF)
    must be a multiple of 160."""
    return _fold(buf)


def _fold(buf):
    """XOR of the 160-byte rows of BUF (len a multiple of 160) -> int."""
    n = len(buf)
    x = int.from_bytes(buf, "little")
    bits = n * 8
    row = WIDTH * 8
    while bits > row:
        rows = bits // row
        half = (rows // 2) * row
        x = (x & ((1 << half) - 1)) ^ (x >> half)
        bits -= half
    return x


class QuickXor:
    def __init__(self):
        self.folded = 0  # int holding 160 bytes, byte j = XOR of pos%160==j
        self.length = 0

    def update(self, data):
        if not data:
            return self
        data = memoryview(data).cast("B")
        lead = self.length % WIDTH
        total = lead + len(data)
        pad = (-total) % WIDTH
        buf = bytes(lead) + bytes(data) + bytes(pad) if (lead or pad) \
            else bytes(data)
        self.folded ^= _fold(buf)
        self.length += len(data)
        return self

    def digest(self):
        acc = 0
        f = self.folded.to_bytes(WIDTH, "little")
        for j, b in enumerate(f):
            if b:
                s = (j * 11) % WIDTH
                acc ^= ((b << s) | (b >> (WIDTH - s))) & _MASK
        out = bytearray(acc.to_bytes(20, "little"))
        for k, lb in enumerate(self.length.to_bytes(8, "little")):
            out[12 + k] ^= lb
        return bytes(out)

    def b64(self):
        return base64.b64encode(self.digest()).decode()


def quickxor_b64(data):
    """quickXorHash of DATA (bytes) as base64."""
    return QuickXor().update(data).b64()


def reference(data):
    """The slow, obviously correct form from GRAPH-API.md (tests only)."""
    acc = 0
    for i, b in enumerate(data):
        s = (i * 11) % WIDTH
        acc ^= ((b << s) | (b >> (WIDTH - s))) & _MASK
    out = bytearray(acc.to_bytes(20, "little"))
    for k, lb in enumerate(len(data).to_bytes(8, "little")):
        out[12 + k] ^= lb
    return base64.b64encode(out).decode()
