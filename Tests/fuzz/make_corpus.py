#!/usr/bin/env python3
"""Writes the seed corpus of the fuzz targets into Tests/fuzz/corpus/<target>/, and the memory-bound
inputs into Tests/fuzz/regressions/<target>/bound-* (Python standard library only; the same bytes
every run, gzip members without a time stamp).

    python3 Tests/fuzz/make_corpus.py            # rewrites Tests/fuzz/corpus/{model,idx,csv}

Input layout of each target (Tests/fuzz/fuzz_checks.h):
  model: a model file (docs/FORMAT.md) as it is.
  idx:   byte 0 bit 0 = with labels; bytes 1-2 (little-endian) = where the images file ends and the
         labels file begins; then both files.
  csv:   bytes 0-3 choose the nudge_csv_options (fz_csv_options); then the file.
Files whose names start with "keep-" are inputs found by fuzzing (minimised) and are left alone.
"""
import gzip
import io
import os
import struct
import sys
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
MAGIC = b"\x89NDG\r\n\x1a\n"
ACT = {"identity": 0, "sigmoid": 1, "tanh": 2, "relu": 3, "leaky": 4, "softmax": 5}


def gz(data):
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as f:
        f.write(data)
    return out.getvalue()


# ---------------------------------------------------------------------------------------------
# Model files

def model(sizes, acts, metadata=(), norm=None, version=None, params=None):
    """A valid model file; `norm` = (offsets, scales) or None; version 2 when norm is given."""
    if version is None:
        version = 2 if norm is not None else 1
    count = sum(sizes[i] * sizes[i + 1] + sizes[i + 1] for i in range(len(sizes) - 1))
    if params is None:
        params = [((i * 37) % 11 - 5) / 8.0 for i in range(count)]
    body = struct.pack("<II", len(sizes), len(metadata)) + struct.pack("<Q", count)
    body += b"".join(struct.pack("<I", s) for s in sizes)
    body += b"".join(struct.pack("<i", ACT[a]) for a in acts)
    if version >= 2:
        body += struct.pack("<I", 0 if norm is None else len(norm[0]))
    for k, v in metadata:
        kb, vb = k.encode(), v.encode()
        body += struct.pack("<I", len(kb)) + kb + struct.pack("<I", len(vb)) + vb
    if version >= 2 and norm is not None:
        body += struct.pack("<%df" % len(norm[0]), *norm[0]) + struct.pack("<%df" % len(norm[1]), *norm[1])
    body += struct.pack("<%df" % count, *params)
    size = 8 + 4 + 4 + 8 + len(body) + 4
    head = MAGIC + struct.pack("<IIQ", version, 0, size)
    data = head + body
    return data + struct.pack("<I", zlib.crc32(data) & 0xFFFFFFFF)


def recrc(data):
    return data[:-4] + struct.pack("<I", zlib.crc32(data[:-4]) & 0xFFFFFFFF)


def model_corpus():
    c = {}
    v1 = model([2, 3, 1], ["tanh", "sigmoid"])
    c["v1-2-3-1"] = v1
    c["v1-meta"] = model([3, 4, 2], ["relu", "softmax"], metadata=[("name", "xor"), ("classes", "a,b")])
    c["v1-deep"] = model([2, 2, 2, 2, 1], ["leaky", "identity", "tanh", "sigmoid"])
    c["v2-norm-global"] = model([2, 3, 1], ["tanh", "identity"], norm=([0.5], [2.0]))
    c["v2-norm-per-input"] = model([3, 2, 3], ["relu", "softmax"], metadata=[("k", "v"), ("é", "ü")],
                                   norm=([1.0, 2.0, 3.0], [0.5, 0.25, 4.0]))
    c["v2-norm-empty"] = model([2, 1], ["identity"], version=2)  # K = 0: saved back as version 1
    c["v2-input1"] = model([1, 1], ["sigmoid"], norm=([0.0], [1.0]))
    # Near misses: each breaks one thing.
    c["truncated-header"] = v1[:30]
    c["truncated-body"] = recrc(v1[:-12] + v1[-4:])
    c["bad-crc"] = v1[:-1] + bytes([v1[-1] ^ 1])
    c["version-3"] = recrc(v1[:8] + struct.pack("<I", 3) + v1[12:])
    c["version-0"] = recrc(v1[:8] + struct.pack("<I", 0) + v1[12:])
    c["flags"] = recrc(v1[:12] + struct.pack("<I", 1) + v1[16:])
    c["size-mismatch"] = recrc(v1[:16] + struct.pack("<Q", len(v1) + 4) + v1[24:])
    c["huge-params"] = recrc(v1[:32] + struct.pack("<Q", 1 << 60) + v1[40:])
    c["huge-layer"] = recrc(v1[:40] + struct.pack("<I", 0xFFFFFFFF) + v1[44:])
    c["bad-activation"] = recrc(v1[:52] + struct.pack("<i", 99) + v1[56:])
    c["softmax-hidden"] = model([2, 2, 1], ["softmax", "sigmoid"])
    c["nan-param"] = model([1, 1], ["identity"], params=[float("nan"), 0.0])
    c["metadata-repeated"] = model([1, 1], ["identity"], metadata=[("a", "1"), ("a", "2")])
    c["metadata-empty-key"] = model([1, 1], ["identity"], metadata=[("", "1")])
    m = model([1, 1], ["identity"], metadata=[("a", "b")])
    c["metadata-bad-utf8"] = recrc(m[:56] + b"\xff" + m[57:])
    c["metadata-huge-length"] = recrc(m[:52] + struct.pack("<I", 0xFFFFFFF0) + m[56:])
    c["norm-wrong-count"] = model([3, 1], ["identity"], norm=([0.0, 1.0], [1.0, 1.0]))
    c["norm-zero-scale"] = model([2, 1], ["identity"], norm=([0.0], [0.0]))
    c["not-a-model"] = b"hello, world\n"
    c["empty"] = b""
    return c


# ---------------------------------------------------------------------------------------------
# IDX files

def idx(dims, payload=None):
    n = 1
    for d in dims:
        n *= d
    if payload is None:
        payload = bytes((i * 29 + 7) % 256 for i in range(n))
    return b"\x00\x00\x08" + bytes([len(dims)]) + b"".join(struct.pack(">I", d) for d in dims) + payload


def idx_input(images, labels=None, wrap_images=False, wrap_labels=False):
    """Byte 0: bit 0 labels follow, bit 1 / bit 2 the target wraps images / labels in gzip."""
    flags = (labels is not None) | wrap_images << 1 | wrap_labels << 2
    return bytes([flags]) + struct.pack("<H", len(images)) + images + (labels or b"")


def idx_corpus():
    c = {}
    images3 = idx([3, 2, 2])
    labels3 = idx([3], bytes([0, 9, 255]))
    c["3d-plain"] = idx_input(images3)
    c["3d-labels"] = idx_input(images3, labels3)
    c["1d-plain"] = idx_input(idx([5]))
    c["2d-labels"] = idx_input(idx([2, 3]), idx([2], b"\x01\x02"))
    c["3d-gzip"] = idx_input(gz(images3))
    c["3d-gzip-labels-gzip"] = idx_input(gz(images3), gz(labels3))
    c["gzip-images-plain-labels"] = idx_input(gz(images3), labels3)
    c["4d"] = idx_input(idx([2, 1, 2, 2]))
    c["label-count-mismatch"] = idx_input(images3, idx([4], bytes(4)))
    c["labels-2d"] = idx_input(images3, idx([3, 1], bytes(3)))
    c["truncated"] = idx_input(images3[:-3])
    c["extra-data"] = idx_input(images3 + b"\x00")
    c["gzip-truncated"] = idx_input(gz(images3)[:-6])
    c["gzip-extra-data"] = idx_input(gz(idx([2, 2]) + b"\x01"))
    c["huge-dims"] = idx_input(b"\x00\x00\x08\x03" + struct.pack(">III", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF))
    c["huge-dims-gzip"] = idx_input(gz(b"\x00\x00\x08\x02" + struct.pack(">II", 1 << 16, 1 << 16) + bytes(64)))
    c["zero-dim"] = idx_input(idx([0, 2], b""))
    c["rank-9"] = idx_input(b"\x00\x00\x08\x09" + bytes(36))
    c["type-float"] = idx_input(b"\x00\x00\x0d\x01" + struct.pack(">I", 1) + bytes(4))
    c["not-idx"] = idx_input(b"\x01\x02\x08\x01" + struct.pack(">I", 1) + b"\x00")
    c["empty-labels"] = idx_input(images3, b"")
    c["wrapped-3d-labels"] = idx_input(images3, labels3, wrap_images=True, wrap_labels=True)
    c["wrapped-images"] = idx_input(idx([2, 2, 2]), wrap_images=True)
    c["wrapped-label-mismatch"] = idx_input(images3, idx([2], b"\x01\x02"), wrap_labels=True)
    return c


# ---------------------------------------------------------------------------------------------
# CSV files

def opts(header=0, delimiter=0, label=0, label_index=0, classes=0, raw_delimiter=b",", wrap=False, roles=0):
    """The 4 option bytes: header 0 auto / 1 present / 2 none; delimiter 0 ',' 1 ';' 2 tab 3 raw;
    label 0 auto, 1 none, 2 index, 3 name "label", 4 name "y", 5 index 0, 6 index 0 + classes, 7 invalid;
    roles (other columns) 0 none, 1 ignore index 0, 2 ignore "id", 3 weights in index 1, 4 weights in
    "w", 5 ignore index 1 and "id" with weights in "w", 6 ignore index 0 twice (refused), 7 ignore
    index 0 with weights in it (refused); wrap: the target wraps the file in gzip."""
    return bytes([header + 3 * delimiter + 128 * wrap, label + 8 * label_index + 32 * roles, raw_delimiter[0], classes])


def kaggle_train(rows=3, pixels=6):
    lines = ["label," + ",".join("pixel%d" % i for i in range(pixels))]
    for r in range(rows):
        lines.append(",".join([str(r % 10)] + [str((r * 31 + i * 17) % 256) for i in range(pixels)]))
    return ("\n".join(lines) + "\n").encode()


def kaggle_test(rows=3, pixels=6):
    lines = [",".join("pixel%d" % i for i in range(pixels))]
    for r in range(rows):
        lines.append(",".join(str((r * 13 + i * 7) % 256) for i in range(pixels)))
    return ("\n".join(lines) + "\n").encode()


def csv_corpus():
    c = {}
    c["kaggle-train"] = opts() + kaggle_train()
    c["kaggle-test"] = opts() + kaggle_test()
    c["kaggle-train-gzip"] = opts() + gz(kaggle_train(5, 8))
    c["kaggle-train-classes"] = opts(label=6, classes=10) + kaggle_train()
    c["label-out-of-class-range"] = opts(label=6, classes=2) + kaggle_train()
    c["by-name"] = opts(label=3) + kaggle_train()
    c["by-name-missing"] = opts(label=4) + kaggle_train()
    c["by-index"] = opts(label=2, label_index=1) + b"a,b,c\n1,2,3\n4,5,6\n"
    c["no-header"] = opts(header=2, label=1) + b"1,2,3\n4,5,6\n"
    c["header-present-numbers"] = opts(header=1) + b"1,2\n3,4\n"
    c["crlf-bom"] = opts() + b"\xef\xbb\xbflabel,x\r\n1,0.5\r\n0,-2.25\r\n"
    c["cr-only"] = opts(label=1) + b"a,b\r1,2\r3,4"
    c["quotes"] = opts() + b'"label","x ""quoted""","y"\n"1"," 2.5 ",3\n0,"4",  5  \n'
    c["quoted-newline"] = opts() + b'"a\nb",c\n1,2\n'
    c["semicolon"] = opts(delimiter=1) + b"label;a;b\n2;1.5e-3;-7\n"
    c["tab"] = opts(delimiter=2, header=2, label=1) + b"1\t2\n3\t4\n"
    c["raw-pipe"] = opts(delimiter=3, raw_delimiter=b"|") + b"label|a\n1|2\n"
    c["raw-bad-delimiter"] = opts(delimiter=3, raw_delimiter=b'"') + b"a\n1\n"
    c["invalid-name-and-none"] = opts(label=7) + b"label,a\n1,2\n"
    c["exponents-decimals"] = opts(header=2, label=1) + b"1e10,-3.4028235e38,0.000001,123456789012345678901\n"
    c["out-of-range"] = opts(header=2, label=1) + b"1e39,1\n"
    c["nan-inf"] = opts(header=2, label=1) + b"nan,inf\n"
    c["label-not-integer"] = opts(label=5, header=2) + b"1.5,2\n"
    c["label-3.0"] = opts(label=5, header=2) + b"3.0,2\n"
    c["label-negative"] = opts(label=5, header=2) + b"-1,2\n"
    c["label-huge"] = opts(label=5, header=2) + b"3000000000,2\n"
    c["ragged"] = opts() + b"a,b\n1,2\n3\n"
    c["too-many-fields"] = opts() + b"a,b\n1,2,3\n"
    c["blank-inside"] = opts() + b"a,b\n1,2\n\n3,4\n"
    c["blank-at-end"] = opts() + b"a,b\n1,2\n\n\n"
    c["blank-first"] = opts() + b"\n1,2\n"
    c["header-only"] = opts() + b"label,a,b\n"
    c["empty"] = opts()
    c["open-quote"] = opts() + b'a,b\n1,"2\n'
    c["after-quote"] = opts() + b'a,b\n1,"2"x\n'
    c["two-labels"] = opts() + b"label,LABEL\n1,2\n"
    c["only-label"] = opts() + b"label\n1\n"
    c["not-a-number"] = opts() + b"a,b\n1,x\n"
    c["empty-cell"] = opts() + b"a,b\n1,\n"
    c["gzip-truncated"] = opts() + gz(kaggle_train())[:-10]
    c["gzip-corrupt"] = opts() + gz(kaggle_train())[:20] + b"\x00" * 20
    c["wrapped-kaggle-train"] = opts(wrap=True) + kaggle_train()
    c["wrapped-quotes-crlf"] = opts(wrap=True, label=1) + b'"a","b"\r\n"1.5",2\r\n'
    c["wrapped-open-quote"] = opts(wrap=True) + b'a\n"1'
    c["wide-row"] = opts(header=2, label=1) + b",".join(b"1" for _ in range(300)) + b"\n"
    # Columns left out and weights (roles).
    c["ignore-index"] = opts(roles=1) + b"id,label,a\n7,1,2\n8,0,3\n"
    c["ignore-text-by-name"] = opts(roles=2) + b'a,id,label\n1,"Braund, Mr. ""Owen""",0\n2,,1\n3,x\xff y,0\n'
    c["ignore-the-label"] = opts(roles=2) + b"id,label\n1,2\n"
    c["ignore-nul"] = opts(roles=1) + b"id,a\n1\x002,3\n"
    c["weight-index"] = opts(roles=3) + b"label,w,a\n1,0.5,2\n0,2,3\n"
    c["weight-name-minus-zero"] = opts(roles=4, label=5) + b"label,a,w\n1,1,0.5\n0,2,-0\n"
    c["weight-negative"] = opts(roles=4) + b"a,w\n1,2\n1,-1e-3\n"
    c["weight-not-finite"] = opts(roles=3, header=2) + b"1,inf\n"
    c["weight-semicolon"] = opts(delimiter=1, roles=4) + b"label;w;a\n1;1e-3;2\n0;\"4\";5\n"
    c["roles-mixed"] = opts(roles=5, label=3) + b'id,x,label,w,y\n1,"n, m",1,0.5,2\n2,,0,1,3\n'
    c["roles-label-is-weight"] = opts(roles=4, label=2, label_index=1) + b"a,w\n1,2\n"
    c["ignore-twice"] = opts(roles=6) + b"a,b\n1,2\n"
    c["ignore-and-weight"] = opts(roles=7) + b"a,b\n1,2\n"
    c["wrapped-roles"] = opts(roles=5, wrap=True) + b'id,x,label,w,y\r\n1,"q",1,2,3\r\n'
    return c


# ---------------------------------------------------------------------------------------------
# Memory bounds (Tests/fuzz/regressions/<target>/bound-*): small files that claim huge sizes

def bound_inputs():
    model = {}
    base = globals()["model"]([2, 3, 1], ["tanh", "sigmoid"])
    # P = 2^60, and layers of 2^24 x 2^24 (2^48 parameters), behind a correct CRC.
    model["bound-params-2pow60"] = recrc(base[:32] + struct.pack("<Q", 1 << 60) + base[40:])
    wide = recrc(base[:40] + struct.pack("<III", 1 << 24, 1 << 24, 1) + base[52:])
    model["bound-layers-2pow24"] = recrc(wide[:32] + struct.pack("<Q", (1 << 48) + (1 << 24) * 2 + 1) + wide[40:])
    # 4096 metadata entries that each claim 1 MiB, in a 300-byte file.
    m = base[:28] + struct.pack("<I", 4096) + base[32:52 + 4 * 1]
    m += struct.pack("<I", 1 << 20) + b"k" * 200
    m = m[:16] + struct.pack("<Q", len(m) + 4) + m[24:]
    model["bound-metadata-4096x1MiB"] = m + struct.pack("<I", zlib.crc32(m) & 0xFFFFFFFF)
    # Normalisation of 2^24 values for an input of 2^24.
    n = globals()["model"]([1, 1], ["identity"], norm=([0.0], [1.0]))
    n = n[:40] + struct.pack("<I", 1 << 24) + n[44:52] + struct.pack("<I", 1 << 24) + n[56:]
    model["bound-normalisation-2pow24"] = recrc(n)

    idxs = {}
    idxs["bound-dims-2pow32-plain"] = idx_input(b"\x00\x00\x08\x02" + struct.pack(">II", 1 << 16, 1 << 16) + bytes(16))
    idxs["bound-dims-2pow96-gzip"] = idx_input(gz(b"\x00\x00\x08\x03" + struct.pack(">III", 0xFFFFFFFF, 0xFFFFFFFF, 0xFFFFFFFF) + bytes(100)))
    # Just under the 1100:1 ratio the reader allows a gzip file, then the data ends early.
    claim = 1000
    for _ in range(3):
        file = gz(b"\x00\x00\x08\x02" + struct.pack(">II", 1, claim) + bytes(4000))
        claim = 1100 * len(file) - 8
    idxs["bound-gzip-claims-ratio"] = idx_input(file)
    idxs["bound-labels-claim-2pow32"] = idx_input(idx([1, 1]), gz(b"\x00\x00\x08\x01" + struct.pack(">I", 0xFFFFFFFF)))

    csvs = {}
    # A gzip file whose first line has 2^20 + 1 fields (refused with NUDGE_ERR_OUT_OF_MEMORY).
    csvs["bound-columns-2pow20plus1-gzip"] = opts(header=2, label=1) + gz(b"1," * (1 << 20) + b"1\n")
    # One field of 1 MiB + 1 bytes: longer than the read buffer.
    csvs["bound-field-1MiB-gzip"] = opts(header=2, label=1) + gz(b"1" * ((1 << 20) + 1) + b"\n")
    # A gzip file of 4 MiB of tiny rows: memory grows with the rows read.
    csvs["bound-rows-gzip"] = opts(header=2, label=1) + gz(b"1\n" * (1 << 21))
    return {"model": model, "idx": idxs, "csv": csvs}


def main():
    targets = {"model": model_corpus(), "idx": idx_corpus(), "csv": csv_corpus()}
    total = 0
    for target, files in targets.items():
        folder = os.path.join(HERE, "corpus", target)
        os.makedirs(folder, exist_ok=True)
        for name in os.listdir(folder):
            if not name.startswith("keep-"):
                os.remove(os.path.join(folder, name))
        for name, data in files.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
            total += len(data)
        print("%s: %d files" % (target, len(files)))
    for target, files in bound_inputs().items():
        folder = os.path.join(HERE, "regressions", target)
        os.makedirs(folder, exist_ok=True)
        for name, data in files.items():
            with open(os.path.join(folder, name), "wb") as f:
                f.write(data)
            total += len(data)
        print("regressions/%s: %d bound-* files" % (target, len(files)))
    print("%d bytes in all (without keep- files)" % total)


if __name__ == "__main__":
    sys.exit(main())
