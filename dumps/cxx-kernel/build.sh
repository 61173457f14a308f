#!/bin/sh
# Builds dbg's C++ sample guest: build.sh OUT (default ../cxx-kernel.elf). Debian's g++ and GNU
# ld; the multiboot entry and the layout are the C sample kernel's (../kernel/boot.S, linker.ld).
set -eu
here=$(cd "$(dirname "$0")" && pwd)
kernel=$(cd "$here/../kernel" && pwd)
out=${1:-$here/../cxx-kernel.elf}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
FLAGS="-O1 -g -Wall -Wextra -ffreestanding -fno-pic -fno-pie -fno-stack-protector \
  -fcf-protection=none -mcmodel=kernel -mno-red-zone -mgeneral-regs-only \
  -fno-asynchronous-unwind-tables -fno-omit-frame-pointer"
CXXFLAGS="-std=gnu++17 -fno-exceptions -fno-rtti -fno-threadsafe-statics -fno-use-cxa-atexit"
# Compile from each source's folder with its path mapped to "." (no path of the building machine).
(cd "$kernel" && gcc $FLAGS -fdebug-prefix-map="$kernel=." -c boot.S -o "$tmp/boot.o")
(cd "$here" && g++ $FLAGS $CXXFLAGS -fdebug-prefix-map="$here=." -c kernel.cpp -o "$tmp/kernel.o")
g++ -nostdlib -static -no-pie -Wl,-T,"$kernel/linker.ld" -Wl,-z,max-page-size=0x1000 \
  -Wl,--build-id=none -Wl,-z,noexecstack -o "$out" "$tmp/boot.o" "$tmp/kernel.o"
