#!/bin/sh
# Builds the dbg sample kernel: build.sh OUT (default ../kernel.elf). gcc and GNU ld.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
out=${1:-$here/../kernel.elf}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
CFLAGS="-std=gnu11 -O1 -g -Wall -Wextra -ffreestanding -fno-pic -fno-pie -fno-stack-protector \
  -fcf-protection=none -mcmodel=kernel -mno-red-zone -mgeneral-regs-only \
  -fno-asynchronous-unwind-tables -fno-omit-frame-pointer -fdebug-prefix-map=$here=."
# Compile from this folder so the DWARF compilation directory, too, is mapped to "." (no path of
# the building machine in the kernel).
(cd "$here" && gcc $CFLAGS -c boot.S -o "$tmp/boot.o" && gcc $CFLAGS -c kernel.c -o "$tmp/kernel.o")
gcc -nostdlib -static -no-pie -Wl,-T,"$here/linker.ld" -Wl,-z,max-page-size=0x1000 \
  -Wl,--build-id=none -Wl,-z,noexecstack -o "$out" "$tmp/boot.o" "$tmp/kernel.o"
