#!/usr/bin/python3
"""recompress.py IN OUT snappy|zstd - rewrite the pages of a kdump-compressed dump (diskdump, not
flattened) that makedumpfile wrote with zlib (-c) in another page compression, as makedumpfile -p
(snappy) or -z (zstd) would store them: each page compressed on its own by the real library
(python3-snappy, python3-zstandard), kept raw when that does not make it smaller. Headers, bitmaps
and notes are copied; the page descriptors get the new offsets, sizes and flags.

Debian's makedumpfile 1.7.2 is built without snappy and zstd, and its QEMU 7.2 offers kdump-zlib
only, so this is how the fixtures for those two compressions are made."""
import struct, sys, zlib

ZLIB, SNAPPY, ZSTD = 0x1, 0x4, 0x20
src, dst, kind = sys.argv[1:4]
if kind == "snappy":
    import snappy
    compress, flag = snappy.compress, SNAPPY
elif kind == "zstd":
    import zstandard
    cctx = zstandard.ZstdCompressor(level=1)
    compress, flag = cctx.compress, ZSTD
else:
    sys.exit("recompress.py: the compression is snappy or zstd")

data = open(src, "rb").read()
assert data[:8] == b"KDUMP   ", "not a diskdump file (flattened? run makedumpfile -R first)"
block = struct.unpack_from("<i", data, 428)[0]
sub_blocks, bitmap_blocks = struct.unpack_from("<iI", data, 432)
max_mapnr = struct.unpack_from("<Q", data, block + 96)[0]
bitmap2 = (1 + sub_blocks) * block + bitmap_blocks // 2 * block
nbytes = bitmap_blocks // 2 * block
dumped = sum(bin(b).count("1") for b in data[bitmap2:bitmap2 + (max_mapnr + 7) // 8])
pd_at = bitmap2 + nbytes
data_at = pd_at + dumped * 24
out = bytearray(data[:data_at])
status = struct.unpack_from("<I", out, 424)[0]
struct.pack_into("<I", out, 424, (status & ~(ZLIB | SNAPPY | ZSTD)) | flag)
written = {}  # old data offset -> new descriptor (the shared zero page stays shared)
for i in range(dumped):
    off, size, flags, page_flags = struct.unpack_from("<QIIQ", data, pd_at + i * 24)
    if off not in written:
        raw = data[off:off + size]
        page = zlib.decompress(raw) if flags & ZLIB else raw
        assert len(page) == block, f"page {i}: {len(page)} bytes"
        packed = compress(page)
        new = (len(out), len(packed), flag) if len(packed) < block else (len(out), block, 0)
        out += packed if new[2] else page
        written[off] = new
    noff, nsize, nflags = written[off]
    struct.pack_into("<QIIQ", out, pd_at + i * 24, noff, nsize, nflags, page_flags)
open(dst, "wb").write(out)
