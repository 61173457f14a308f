#!/bin/sh
# make-vmcore-qemu.sh - boot a kernel under QEMU (Debian's qemu-system-x86, TCG), wait until it
# panics, and write its memory as an ELF kernel dump with QEMU's dump-guest-memory.
#
#   dumps/make-vmcore-qemu.sh [options] KERNEL OUT
#
#   KERNEL   what QEMU's -kernel accepts: a multiboot ELF (like dumps/qemu/kernel.elf) or a
#            Linux bzImage (add --append 'console=ttyS0 panic=0' and perhaps --initrd)
#   OUT      the dump to write, e.g. dumps/vmcore.0
#
#   --paging          dump-guest-memory -p: PT_LOADs carry virtual addresses (QEMU walks CR3)
#   --wait REGEX      console text that means "panicked" (default: 'PANIC|Kernel panic')
#   --timeout SEC     give up after SEC seconds (default 60)
#   --smp N           CPUs (default 2); --mem MIB  memory (default 32)
#   --append STR      kernel command line; --initrd FILE
#   --cpu MODEL       QEMU CPU model (default qemu64,+pdpe1gb: 1 GiB pages need pdpe1gb)
#   --xz              also write OUT.xz (xz -9)
#   --kdump           also write the same stopped machine in each kdump-compressed form this
#                     QEMU offers (dump-guest-memory -z, -l, -s): OUT.zlib.kdump, OUT.lzo.kdump,
#                     OUT.snappy.kdump (Debian's QEMU 7.2 has zlib only)
#
# The machine gets `-device vmcoreinfo`, so a Linux guest (CONFIG_FW_CFG_SYSFS) hands QEMU its
# VMCOREINFO and the dump carries it. The console goes to OUT.console.txt.
#
# Not part of CI (it needs QEMU: apt-get install qemu-system-x86). Then:
#   dbg open OUT --symbols KERNEL-or-vmlinux -e '::status; ::stack'
set -eu

QEMU=${QEMU:-qemu-system-x86_64}
paging=""
wait_re='PANIC|Kernel panic'
timeout=60
smp=2
mem=32
append=""
initrd=""
cpu="qemu64,+pdpe1gb"
compress=""
kdump=""
usage() {
    sed -n '2,25p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}
while [ $# -gt 0 ]; do
    case "$1" in
    --paging) paging=1 ;;
    --wait) wait_re=$2; shift ;;
    --timeout) timeout=$2; shift ;;
    --smp) smp=$2; shift ;;
    --mem) mem=$2; shift ;;
    --append) append=$2; shift ;;
    --initrd) initrd=$2; shift ;;
    --cpu) cpu=$2; shift ;;
    --xz) compress=1 ;;
    --kdump) kdump=1 ;;
    -h | --help) usage ;;
    -*) echo "make-vmcore-qemu.sh: unknown option $1" >&2; usage ;;
    *) break ;;
    esac
    shift
done
[ $# -eq 2 ] || usage
kernel=$1
out=$2
for tool in "$QEMU" python3; do
    command -v "$tool" >/dev/null || {
        echo "make-vmcore-qemu.sh: $tool not found (Debian: apt-get install -y qemu-system-x86 python3)" >&2
        exit 1
    }
done
[ -f "$kernel" ] || { echo "make-vmcore-qemu.sh: no kernel file $kernel" >&2; exit 1; }

work=$(mktemp -d "${TMPDIR:-/tmp}/vmcore-qemu.XXXXXX")
out_abs=$(cd "$(dirname "$out")" && pwd)/$(basename "$out")
rm -f "$out_abs"

set -- -machine pc -cpu "$cpu" -m "$mem" -smp "$smp" -display none -no-reboot -net none \
    -device vmcoreinfo -serial "file:$work/console.txt" \
    -qmp "unix:$work/qmp.sock,server=on,wait=off" -kernel "$kernel"
[ -n "$append" ] && set -- "$@" -append "$append"
[ -n "$initrd" ] && set -- "$@" -initrd "$initrd"
"$QEMU" "$@" &
qemu_pid=$!
trap 'kill "$qemu_pid" 2>/dev/null || true; rm -rf "$work"' EXIT INT TERM

# A small QMP client: wait for the panic text on the console, stop the CPUs, dump, quit.
python3 - "$work/qmp.sock" "$work/console.txt" "$wait_re" "$timeout" "$out_abs" "$paging" "$kdump" <<'PY'
import json, re, socket, sys, time

sock_path, console, wait_re, timeout, out, paging, kdump = sys.argv[1:8]
deadline = time.time() + float(timeout)

def fail(msg):
    sys.exit(f"make-vmcore-qemu.sh: {msg}")

while True:
    try:
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.connect(sock_path)
        break
    except OSError:
        s.close()
        if time.time() > deadline:
            fail("QEMU did not open its QMP socket")
        time.sleep(0.1)
f = s.makefile("rwb")

def reply():
    while True:
        line = f.readline()
        if not line:
            fail("QEMU closed the QMP connection")
        msg = json.loads(line)
        if "event" not in msg:
            return msg

def qmp(cmd, **args):
    f.write(json.dumps({"execute": cmd, **({"arguments": args} if args else {})}).encode() + b"\n")
    f.flush()
    r = reply()
    if "error" in r:
        fail(f"{cmd}: {r['error'].get('desc', r['error'])}")
    return r["return"]

reply()  # greeting
qmp("qmp_capabilities")
pattern = re.compile(wait_re)
while True:
    try:
        text = open(console, errors="replace").read()
    except FileNotFoundError:
        text = ""
    if pattern.search(text):
        break
    if time.time() > deadline:
        fail(f"no console line matching /{wait_re}/ within {timeout} s; console so far:\n{text[-2000:]}")
    time.sleep(0.2)
time.sleep(0.5)  # let the panicking CPU reach its halt loop
qmp("stop")
dumps = [(out, "elf")]
if kdump:
    offered = qmp("query-dump-guest-memory-capability")["formats"]
    dumps += [(f"{out}.{f[6:]}.kdump", f) for f in offered if f.startswith("kdump-")]
for path, fmt in dumps:
    qmp("dump-guest-memory", paging=bool(paging) and fmt == "elf", protocol=f"file:{path}", format=fmt)
    while qmp("query-dump")["status"] == "active":
        time.sleep(0.1)
    status = qmp("query-dump")["status"]
    if status != "completed":
        fail(f"dump-guest-memory ({fmt}) ended with status {status}")
try:
    qmp("quit")
except SystemExit:
    pass
PY
wait "$qemu_pid" 2>/dev/null || true
chmod 644 "$out_abs"
[ -n "$kdump" ] && chmod 644 "$out_abs".*.kdump
cp "$work/console.txt" "$out_abs.console.txt"
trap - EXIT INT TERM
rm -rf "$work"
[ -n "$compress" ] && xz -9 -k -f "$out_abs"
ls -l "$out_abs"
