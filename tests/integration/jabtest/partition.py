"""jabtest.partition — a user's partition as core/partition.c computes it (SipHash-2-4 of the
bare JID under the built-in key, the top 12 bits; the slots split evenly over the SMs), for tests
that must know which SM owns a user."""

K0, K1 = 0x6a61627368617264, 0x2d706172746e3031   # partition_default_key
SLOTS = 4096
M = (1 << 64) - 1


def _rotl(x, b):
    return ((x << b) | (x >> (64 - b))) & M


def siphash24(k0, k1, data):
    v0, v1 = 0x736f6d6570736575 ^ k0, 0x646f72616e646f6d ^ k1
    v2, v3 = 0x6c7967656e657261 ^ k0, 0x7465646279746573 ^ k1

    def rounds(n):
        nonlocal v0, v1, v2, v3
        for _ in range(n):
            v0 = (v0 + v1) & M; v1 = _rotl(v1, 13) ^ v0; v0 = _rotl(v0, 32)  # noqa: E702
            v2 = (v2 + v3) & M; v3 = _rotl(v3, 16) ^ v2                      # noqa: E702
            v0 = (v0 + v3) & M; v3 = _rotl(v3, 21) ^ v0                      # noqa: E702
            v2 = (v2 + v1) & M; v1 = _rotl(v1, 17) ^ v2; v2 = _rotl(v2, 32)  # noqa: E702

    whole = len(data) & ~7
    for i in range(0, whole, 8):
        m = int.from_bytes(data[i:i + 8], 'little')
        v3 ^= m
        rounds(2)
        v0 ^= m
    b = (len(data) & 0xff) << 56 | int.from_bytes(data[whole:], 'little')
    v3 ^= b
    rounds(2)
    v0 ^= b
    v2 ^= 0xff
    rounds(4)
    return v0 ^ v1 ^ v2 ^ v3


def slot(bare):
    """The slot of a canonical bare JID (lower-case ASCII here)."""
    return siphash24(K0, K1, bare.encode()) >> 52


def owner(bare, nsms):
    """The index of the SM owning bare's slot among nsms."""
    s = slot(bare)
    for i in range(nsms - 1, -1, -1):
        if i * SLOTS // nsms <= s:
            return i
    return 0


def users_of(index, nsms, n, domain='localhost', prefix='user'):
    """The first n names prefix<i>@domain whose partition is index's."""
    out, i = [], 0
    while len(out) < n:
        j = '%s%d@%s' % (prefix, i, domain)
        if owner(j, nsms) == index:
            out.append(j)
        i += 1
    return out
