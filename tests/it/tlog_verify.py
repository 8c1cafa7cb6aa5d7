#!/usr/bin/env python3
"""An independent verifier of an fm registry's transparency log.

Not fm's code: written from the C2SP specs (tlog-tiles, tlog-checkpoint,
signed-note) and RFC 6962 alone. Reads LOG_DIR (a registry folder's log/),
recomputes every leaf and node hash from the entry bundles, checks every
hash tile of the tree, the checkpoint's root, origin and Ed25519 signature.

usage: tlog_verify.py LOG_DIR [--records]
  --records  print one line per record: INDEX ACTION NAME VERSION SHA256
Exit 0 and a FIGURES line when the log verifies; exit 1 and a reason if not.
Needs `cryptography` (Ed25519) besides the standard library.
"""
import base64
import hashlib
import os
import struct
import sys

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

HEIGHT = 8
WIDTH = 1 << HEIGHT


def fail(msg):
    print(f"tlog_verify.py: FAIL: {msg}", file=sys.stderr)
    sys.exit(1)


def read(log, path):
    full = os.path.join(log, *path.split("/"))
    try:
        with open(full, "rb") as f:
            return f.read()
    except FileNotFoundError:
        fail(f"{path} is missing")


def encode_index(n):
    # C2SP tlog-tiles: groups of three digits, all but the last prefixed "x".
    s = "%03d" % (n % 1000)
    while n >= 1000:
        n //= 1000
        s = "x%03d/%s" % (n % 1000, s)
    return s


def tile_path(level, n, width):
    p = f"tile/{level}/{encode_index(n)}"
    return p if width == WIDTH else f"{p}.p/{width}"


def leaf_hash(data):
    return hashlib.sha256(b"\x00" + data).digest()


def node_hash(left, right):
    return hashlib.sha256(b"\x01" + left + right).digest()


def mth(leaves):
    # RFC 6962 §2.1 Merkle Tree Hash.
    n = len(leaves)
    if n == 0:
        return hashlib.sha256(b"").digest()
    if n == 1:
        return leaves[0]
    k = 1
    while k * 2 < n:
        k *= 2
    return node_hash(mth(leaves[:k]), mth(leaves[k:]))


def parse_key(text):
    # signed-note verifier key: name+hex8+base64(0x01 || ed25519 pubkey)
    name, key_id, b64 = text.strip().split("+", 2)
    raw = base64.b64decode(b64, validate=True)
    if raw[0] != 1 or len(raw) != 33:
        fail("log/key is not an Ed25519 signed-note key")
    want = hashlib.sha256(name.encode() + b"\n" + raw).digest()[:4]
    if want.hex() != key_id:
        fail("log/key's key id does not match its name and key")
    return name, want, Ed25519PublicKey.from_public_bytes(raw[1:])


def open_note(note, name, key_id, pub):
    text_end = note.rfind(b"\n\n")
    if text_end < 0:
        fail("checkpoint is not a signed note")
    text, sigs = note[: text_end + 1], note[text_end + 2 :]
    ok = False
    for line in sigs.decode().split("\n"):
        if not line:
            continue
        if not line.startswith("\u2014 "):
            fail(f"bad signature line {line!r}")
        sig_name, b64 = line[2:].split(" ")
        raw = base64.b64decode(b64, validate=True)
        if sig_name == name and raw[:4] == key_id:
            try:
                pub.verify(raw[4:], text)
            except Exception:
                fail("the checkpoint's signature does not verify")
            ok = True
    if not ok:
        fail("the checkpoint carries no signature by log/key")
    lines = text.decode().split("\n")
    origin, size, root = lines[0], int(lines[1]), base64.b64decode(lines[2], validate=True)
    if origin != name:
        fail(f"checkpoint origin {origin!r} is not the key's name {name!r}")
    if str(size) != lines[1]:
        fail("non-canonical size")
    return size, root


def main():
    if len(sys.argv) < 2:
        fail("usage: tlog_verify.py LOG_DIR [--records]")
    log = sys.argv[1]
    name, key_id, pub = parse_key(read(log, "key").decode())
    size, root = open_note(read(log, "checkpoint"), name, key_id, pub)

    entries = []
    for k in range((size + WIDTH - 1) // WIDTH):
        width = min(WIDTH, size - k * WIDTH)
        path = f"tile/entries/{encode_index(k)}" + ("" if width == WIDTH else f".p/{width}")
        data, got = read(log, path), []
        while data:
            if len(data) < 2:
                fail(f"{path}: truncated length")
            (n,) = struct.unpack(">H", data[:2])
            if len(data) < 2 + n:
                fail(f"{path}: truncated entry")
            got.append(data[2 : 2 + n])
            data = data[2 + n :]
        if len(got) != width:
            fail(f"{path}: {len(got)} entries, expected {width}")
        entries.extend(got)

    leaves = [leaf_hash(e) for e in entries]
    if mth(leaves) != root:
        fail("the checkpoint's root is not the Merkle tree hash of the entries")

    # Hash tiles: level L holds the hashes of complete subtrees of 256**L
    # leaves; a tile holds 256 of them (fewer at the right edge: .p/W).
    tiles = 0
    level, hashes = 0, leaves
    while hashes:
        for k in range((len(hashes) + WIDTH - 1) // WIDTH):
            chunk = hashes[k * WIDTH : (k + 1) * WIDTH]
            path = tile_path(level, k, len(chunk))
            if read(log, path) != b"".join(chunk):
                fail(f"{path}: hashes differ from the entries'")
            tiles += 1
        nxt = hashes
        for _ in range(HEIGHT):
            nxt = [node_hash(nxt[i], nxt[i + 1]) for i in range(0, len(nxt) - 1, 2)]
        hashes, level = nxt, level + 1

    for i, e in enumerate(entries):
        lines = e.decode().split("\n")
        if lines[0] != "fm-log v1":
            fail(f"entry {i} is not an fm log record")
        if "--records" in sys.argv:
            action, pkg, version = lines[1].split(" ")
            sha = lines[2].split(" ")[1]
            print(f"{i} {action} {pkg} {version} {sha}")
    print(f"FIGURES tlog_verify.py: {size} records, {tiles} hash tiles, root and Ed25519 signature checked", file=sys.stderr)


main()
