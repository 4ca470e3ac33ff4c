#!/usr/bin/env python3
"""Independent reference for the known-answer vectors of docs/FORMAT.md.

It builds the format v1 structures from the spec alone, with Python's
hashlib/hmac and the `cryptography` package's ChaCha20-Poly1305, and its own
HChaCha20 (RFC draft-irtf-cfrg-xchacha section 2.2). It shares no code with
the Go implementation. The argon2id key of the passphrase slot comes from
the reference C implementation:

    printf 'kat passphrase' | argon2 sessionvault-kat -id -t 2 -k 19456 -p 1 -l 32 -r

Run: python3 reference.py  (prints the vectors as Go-testable hex lines).
"""
import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305


def rotl(v, c):
    return ((v << c) & 0xFFFFFFFF) | (v >> (32 - c))


def quarter(s, a, b, c, d):
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 16)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 12)
    s[a] = (s[a] + s[b]) & 0xFFFFFFFF; s[d] = rotl(s[d] ^ s[a], 8)
    s[c] = (s[c] + s[d]) & 0xFFFFFFFF; s[b] = rotl(s[b] ^ s[c], 7)


def hchacha20(key, nonce16):
    s = [0x61707865, 0x3320646E, 0x79622D32, 0x6B206574]
    s += list(struct.unpack("<8I", key)) + list(struct.unpack("<4I", nonce16))
    for _ in range(10):
        quarter(s, 0, 4, 8, 12); quarter(s, 1, 5, 9, 13)
        quarter(s, 2, 6, 10, 14); quarter(s, 3, 7, 11, 15)
        quarter(s, 0, 5, 10, 15); quarter(s, 1, 6, 11, 12)
        quarter(s, 2, 7, 8, 13); quarter(s, 3, 4, 9, 14)
    return struct.pack("<8I", *(s[0:4] + s[12:16]))


def xchacha_seal(key, nonce24, plaintext, aad):
    sub = hchacha20(key, nonce24[:16])
    return ChaCha20Poly1305(sub).encrypt(b"\0\0\0\0" + nonce24[16:], plaintext, aad)


def hkdf(secret, salt, info, n):
    prk = hmac.new(salt, secret, hashlib.sha256).digest()
    out, t, i = b"", b"", 1
    while len(out) < n:
        t = hmac.new(prk, t + info + bytes([i]), hashlib.sha256).digest()
        out += t
        i += 1
    return out[:n]


def seq(start, n):
    return bytes(range(start, start + n))


# draft-irtf-cfrg-xchacha-03, section 2.2.1.
assert hchacha20(bytes(range(32)), bytes.fromhex("000000090000004a0000000031415927")).hex() == \
    "82413b4227b27bfed30e42508a877d73a0f9e4d58a74a853c12ec41326d3ecdc"
# RFC 5869, test case 1.
assert hkdf(bytes([0x0B] * 22), bytes(range(13)), bytes.fromhex("f0f1f2f3f4f5f6f7f8f9"), 42).hex() == \
    "3cb25f25faacd57a90434f64d0362f2a2d2d0a90cf1a5a4c5db02d56ecc4c5bf34007208d5b887185865"


# Inputs (docs/FORMAT.md, "Known-answer vectors").
VAULT_ID = seq(0x00, 16)
DATA_KEY = seq(0x80, 32)          # generation 1
SESSION_NONCE = seq(0x40, 24)
SESSION_NAME = b"kat"
PLAINTEXT = b'{"access_token":"kat"}'
KEYCHAIN_SLOT_ID = seq(0xA0, 16)
KEYCHAIN_KEK = seq(0xC0, 32)
KEYCHAIN_NONCE = seq(0x60, 24)
PASS_SLOT_ID = seq(0xD0, 16)
PASS_SALT = b"sessionvault-kat"
PASS_T, PASS_M, PASS_P = 2, 19456, 1
# printf 'kat passphrase' | argon2 sessionvault-kat -id -t 2 -k 19456 -p 1 -l 32 -r
PASS_KEK = bytes.fromhex(open(__file__.replace("reference.py", "argon2-kek.hex")).read().strip())
PASS_NONCE = seq(0x10, 24)

# Session envelope.
seal_key = hkdf(DATA_KEY, VAULT_ID, b"sessionvault v1 session seal", 32)
env_hdr = b"SVLT-SES" + struct.pack(">HI", 1, 1) + SESSION_NONCE
aad = env_hdr + VAULT_ID + bytes([len(SESSION_NAME)]) + SESSION_NAME
envelope = env_hdr + xchacha_seal(seal_key, SESSION_NONCE, PLAINTEXT, aad)
print("session_seal_key", seal_key.hex())
print("session", envelope.hex())

# Header: generation [1], slots [passphrase, keychain].
gen_prefix = b"SVLT-HDR" + struct.pack(">H", 1) + VAULT_ID + bytes([1]) + struct.pack(">I", 1)


def slot(kind, slot_id, params, kek, nonce):
    check = hkdf(kek, VAULT_ID, b"sessionvault v1 slot check" + slot_id, 16)
    wrap_key = hkdf(kek, VAULT_ID, b"sessionvault v1 slot wrap" + slot_id, 32)
    fixed = bytes([kind]) + slot_id + params + check
    wrapped = xchacha_seal(wrap_key, nonce, DATA_KEY, gen_prefix + fixed)
    return check, wrap_key, fixed + nonce + wrapped


pcheck, pwrap, pslot = slot(1, PASS_SLOT_ID, struct.pack(">IIB", PASS_T, PASS_M, PASS_P) + PASS_SALT, PASS_KEK, PASS_NONCE)
kcheck, kwrap, kslot = slot(2, KEYCHAIN_SLOT_ID, b"", KEYCHAIN_KEK, KEYCHAIN_NONCE)
body = gen_prefix + bytes([2]) + pslot + kslot
mac_key = hkdf(DATA_KEY, VAULT_ID, b"sessionvault v1 header mac", 32)
mac = hmac.new(mac_key, body, hashlib.sha256).digest()
header = body + mac + hashlib.sha256(body + mac).digest()
print("passphrase_kek", PASS_KEK.hex())
print("passphrase_slot_check", pcheck.hex())
print("passphrase_slot_wrap_key", pwrap.hex())
print("keychain_slot_check", kcheck.hex())
print("keychain_slot_wrap_key", kwrap.hex())
print("header_mac_key", mac_key.hex())
print("header", header.hex())

# --- Added with envelope version 2 (docs/FORMAT.md section 9.2). ---

# Envelope version 2: the same session with rollback counter
# 0x0102030405060708 between the generation and the nonce.
COUNTER = 0x0102030405060708
env2_hdr = b"SVLT-SES" + struct.pack(">HIQ", 2, 1, COUNTER) + SESSION_NONCE
aad2 = env2_hdr + VAULT_ID + bytes([len(SESSION_NAME)]) + SESSION_NAME
print("session_v2", (env2_hdr + xchacha_seal(seal_key, SESSION_NONCE, PLAINTEXT, aad2)).hex())

# A header with two generations [1, 2] (a rotation in progress) and one
# keychain slot, wrapping DK_1 || DK_2; the MAC is under DK_2.
DATA_KEY_2 = seq(0x20, 32)
gen2_prefix = b"SVLT-HDR" + struct.pack(">H", 1) + VAULT_ID + bytes([2]) + struct.pack(">II", 1, 2)
kfixed = bytes([2]) + KEYCHAIN_SLOT_ID + kcheck
kwrapped = xchacha_seal(kwrap, KEYCHAIN_NONCE, DATA_KEY + DATA_KEY_2, gen2_prefix + kfixed)
body2 = gen2_prefix + bytes([1]) + kfixed + KEYCHAIN_NONCE + kwrapped
mac_key2 = hkdf(DATA_KEY_2, VAULT_ID, b"sessionvault v1 header mac", 32)
mac2 = hmac.new(mac_key2, body2, hashlib.sha256).digest()
print("header_mac_key_gen2", mac_key2.hex())
print("header_two_generations_keychain", (body2 + mac2 + hashlib.sha256(body2 + mac2).digest()).hex())
# A session sealed under generation 2 of that header (envelope v2, counter 7).
seal_key2 = hkdf(DATA_KEY_2, VAULT_ID, b"sessionvault v1 session seal", 32)
env3_hdr = b"SVLT-SES" + struct.pack(">HIQ", 2, 2, 7) + SESSION_NONCE
aad3 = env3_hdr + VAULT_ID + bytes([len(SESSION_NAME)]) + SESSION_NAME
print("session_v2_gen2", (env3_hdr + xchacha_seal(seal_key2, SESSION_NONCE, PLAINTEXT, aad3)).hex())

# A header with one passphrase slot of 4 lanes (p=4), generation [1].
# printf 'kat passphrase' | argon2 sessionvault-kat -id -t 2 -k 19456 -p 4 -l 32 -r
PASS_KEK_P4 = bytes.fromhex(open(__file__.replace("reference.py", "argon2-kek-p4.hex")).read().strip())
p4check, p4wrap, p4slot = slot(1, PASS_SLOT_ID, struct.pack(">IIB", PASS_T, PASS_M, 4) + PASS_SALT, PASS_KEK_P4, PASS_NONCE)
body4 = gen_prefix + bytes([1]) + p4slot
mac4 = hmac.new(mac_key, body4, hashlib.sha256).digest()
print("passphrase_kek_p4", PASS_KEK_P4.hex())
print("header_p4", (body4 + mac4 + hashlib.sha256(body4 + mac4).digest()).hex())

# --- Added with header version 3 (docs/FORMAT.md section 9.3). ---

# A header with generation [1] and one keychain slot that records the
# service name "sessionvault" (kind 0x04): the name's length and bytes
# sit between the slot id and the check, inside AAD_slot; the version
# inside AAD_slot stays 0x0001.
SERVICE = b"sessionvault"
v3_prefix = b"SVLT-HDR" + struct.pack(">H", 3) + VAULT_ID + bytes([1]) + struct.pack(">I", 1)
sfixed = bytes([4]) + KEYCHAIN_SLOT_ID + bytes([len(SERVICE)]) + SERVICE + kcheck
swrapped = xchacha_seal(kwrap, KEYCHAIN_NONCE, DATA_KEY, gen_prefix + sfixed)
body5 = v3_prefix + bytes([1]) + sfixed + KEYCHAIN_NONCE + swrapped
mac5 = hmac.new(mac_key, body5, hashlib.sha256).digest()
print("header_v3_keychain_service", (body5 + mac5 + hashlib.sha256(body5 + mac5).digest()).hex())

# --- Added with envelope version 3, chunked (docs/FORMAT.md section 9.4). ---

# Plaintext of 2 * 65,536 + 100 bytes, byte j = j mod 251: two full
# chunks and a last one of 100 bytes. Nonce prefix seq(0x40, 16), counter
# 0x0102030405060708, generation 1, name "kat". Chunk i is
# XChaCha20-Poly1305 under SK_1 with nonce prefix || u32(i) || u32(last),
# every chunk with the same AAD as a version 2 envelope (header bytes
# [0, 38) || vault id || u8 name length || name).
CHUNK = 65536
PLAINTEXT_V3 = bytes(j % 251 for j in range(2 * CHUNK + 100))
PREFIX = seq(0x40, 16)
env_v3_hdr = b"SVLT-SES" + struct.pack(">HIQ", 3, 1, COUNTER) + PREFIX
aad_v3 = env_v3_hdr + VAULT_ID + bytes([len(SESSION_NAME)]) + SESSION_NAME
pieces = [PLAINTEXT_V3[i:i + CHUNK] for i in range(0, len(PLAINTEXT_V3), CHUNK)]
chunks = [xchacha_seal(seal_key, PREFIX + struct.pack(">II", i, int(i == len(pieces) - 1)), p, aad_v3)
          for i, p in enumerate(pieces)]
blob_v3 = env_v3_hdr + b"".join(chunks)
assert len(blob_v3) == 38 + len(PLAINTEXT_V3) + 16 * len(chunks)
print("session_v3_head", (env_v3_hdr + chunks[0][:32]).hex())
print("session_v3_tags", b"".join(c[-16:] for c in chunks).hex())
print("session_v3_last_chunk", chunks[-1].hex())
print("session_v3_sha256", hashlib.sha256(blob_v3).hexdigest())
