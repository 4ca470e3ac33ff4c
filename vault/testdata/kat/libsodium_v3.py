#!/usr/bin/env python3
"""Envelope version 3 (docs/FORMAT.md sections 4.4 and 9.4) with libsodium.

An outside implementation: it seals the section 9.4 plaintext chunk by chunk
with libsodium's crypto_aead_xchacha20poly1305_ietf_encrypt (through ctypes,
libsodium23), compares the result with the vectors of vectors.txt, then
opens every chunk with crypto_aead_xchacha20poly1305_ietf_decrypt and checks
that a blob cut at a chunk boundary or with two chunks swapped does not
open. The session key SK_1 is taken from vectors.txt (session_seal_key;
reference.py derives it).

Run: python3 libsodium_v3.py  (prints "ok" or fails; exits 77 without
libsodium). vault's TestLibsodiumOpensEnvelopeV3 runs it.
"""
import ctypes
import ctypes.util
import hashlib
import os
import struct
import sys

try:
    lib = ctypes.CDLL(ctypes.util.find_library("sodium") or "libsodium.so.23")
except OSError:
    print("libsodium not found")
    sys.exit(77)  # vault's TestLibsodiumOpensEnvelopeV3 skips
assert lib.sodium_init() >= 0

here = os.path.dirname(os.path.abspath(__file__))
vec = dict(line.split(" ", 1) for line in open(os.path.join(here, "vectors.txt")).read().splitlines())
vec = {k: bytes.fromhex(v) for k, v in vec.items()}


def seal(key, nonce, msg, ad):
    out = ctypes.create_string_buffer(len(msg) + 16)
    n = ctypes.c_ulonglong()
    rc = lib.crypto_aead_xchacha20poly1305_ietf_encrypt(out, ctypes.byref(n), msg, ctypes.c_ulonglong(len(msg)),
                                                       ad, ctypes.c_ulonglong(len(ad)), None, nonce, key)
    assert rc == 0
    return out.raw[:n.value]


def open_(key, nonce, c, ad):
    out = ctypes.create_string_buffer(max(1, len(c)))
    n = ctypes.c_ulonglong()
    rc = lib.crypto_aead_xchacha20poly1305_ietf_decrypt(out, ctypes.byref(n), None, c, ctypes.c_ulonglong(len(c)),
                                                       ad, ctypes.c_ulonglong(len(ad)), nonce, key)
    return out.raw[:n.value] if rc == 0 else None


def open_blob(key, vault_id, name, blob):
    """Opens a version 3 envelope as section 4.4 says, or returns None."""
    hdr, body = blob[:38], blob[38:]
    if hdr[:8] != b"SVLT-SES" or struct.unpack(">H", hdr[8:10])[0] != 3:
        return None
    prefix = hdr[22:38]
    ad = hdr + vault_id + bytes([len(name)]) + name
    n = (len(body) + 65551) // 65552
    if n == 0 or len(body) - (n - 1) * 65552 < 17:
        return None
    out = b""
    for i in range(n):
        p = open_(key, prefix + struct.pack(">II", i, int(i == n - 1)), body[i * 65552:(i + 1) * 65552], ad)
        if p is None:
            return None
        out += p
    return out


key = vec["session_seal_key"]
vault_id, name = bytes(range(16)), b"kat"
plain = bytes(j % 251 for j in range(2 * 65536 + 100))
hdr = b"SVLT-SES" + struct.pack(">HIQ", 3, 1, 0x0102030405060708) + bytes(range(0x40, 0x50))
ad = hdr + vault_id + bytes([len(name)]) + name
pieces = [plain[i:i + 65536] for i in range(0, len(plain), 65536)]
chunks = [seal(key, hdr[22:38] + struct.pack(">II", i, int(i == len(pieces) - 1)), p, ad) for i, p in enumerate(pieces)]
blob = hdr + b"".join(chunks)
assert (hdr + chunks[0][:32]) == vec["session_v3_head"]
assert b"".join(c[-16:] for c in chunks) == vec["session_v3_tags"]
assert chunks[-1] == vec["session_v3_last_chunk"]
assert hashlib.sha256(blob).digest() == vec["session_v3_sha256"]
assert open_blob(key, vault_id, name, blob) == plain
assert open_blob(key, vault_id, name, blob[:38 + 2 * 65552]) is None          # last chunk dropped
assert open_blob(key, vault_id, name, hdr + chunks[1] + chunks[0] + chunks[2]) is None  # reordered
assert open_blob(key, vault_id, b"kat2", blob) is None                         # another name
print("ok")
