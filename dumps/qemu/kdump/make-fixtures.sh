#!/bin/sh
# make-fixtures.sh - the kdump-compressed fixtures: one QEMU session of ../kernel.elf, stopped
# after its panic, written as an ELF dump and as QEMU's kdump-zlib (flattened) dump; then
# makedumpfile's zlib dump of that ELF re-encoded with snappy and zstd pages (recompress.py).
# The tests make the makedumpfile -c, -l and -F dumps themselves from vmcore.elf.xz.
#
#   apt-get install -y qemu-system-x86 makedumpfile xz-utils python3 python3-snappy python3-zstandard
#   ./make-fixtures.sh     # about 10 s; rewrites the .xz files and SHA256SUMS
set -eu
cd "$(dirname "$0")"
rm -rf .work
mkdir .work
../../make-vmcore-qemu.sh --kdump --timeout 60 ../kernel.elf .work/vmcore.elf
# makedumpfile reads the program headers right after the ELF header; QEMU 7.2 puts its section
# header there. Move the program headers (same file offsets for all data) for makedumpfile.
python3 - .work/vmcore.elf .work/vmcore-mdf.elf <<'PY'
import shutil, struct, sys
shutil.copyfile(sys.argv[1], sys.argv[2])
with open(sys.argv[2], "r+b") as f:
    h = bytearray(f.read(64))
    phoff, = struct.unpack_from("<Q", h, 32)
    phentsize, phnum = struct.unpack_from("<HH", h, 54)
    f.seek(phoff)
    ph = f.read(phentsize * phnum)
    struct.pack_into("<QQ", h, 32, 64, 0)       # e_phoff = 64, no section headers
    struct.pack_into("<H", h, 52, 64)           # e_ehsize
    struct.pack_into("<HHH", h, 58, 64, 0, 0)   # e_shentsize, e_shnum, e_shstrndx
    f.seek(0)
    f.write(h + ph)
PY
makedumpfile -c -d 1 -i makedumpfile.vmcoreinfo .work/vmcore-mdf.elf .work/mdf-zlib.kdump >/dev/null
/usr/bin/python3 recompress.py .work/mdf-zlib.kdump .work/snappy.kdump snappy
/usr/bin/python3 recompress.py .work/mdf-zlib.kdump .work/zstd.kdump zstd
xz -9 -c .work/vmcore.elf >vmcore.elf.xz
xz -9 -c .work/vmcore.elf.zlib.kdump >qemu-zlib.flat.xz
xz -9 -c .work/snappy.kdump >snappy.kdump.xz
xz -9 -c .work/zstd.kdump >zstd.kdump.xz
sha256sum vmcore.elf.xz qemu-zlib.flat.xz snappy.kdump.xz zstd.kdump.xz makedumpfile.vmcoreinfo >SHA256SUMS
rm -rf .work
ls -l *.xz
