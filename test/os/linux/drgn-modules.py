# drgn's answers about a dump's kernel modules, as JSON, for test/os/linux/real-dumps.test.ts:
#   python3 drgn-modules.py VMCORE VMLINUX [MODULE.ko...] < names.json
# drgn places each .ko by the kernel's section addresses (mod->sect_attrs). Prints the symbol
# drgn finds for each name read from stdin (address and size, or null), and the frames of the
# panicking thread (the one whose stack holds panic()): pc and the symbol that holds pc - 1.
import json
import sys

import drgn

prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
try:
    prog.load_debug_info(sys.argv[2:])
except drgn.MissingDebugInfoError:
    pass  # modules given no .ko: drgn names nothing in them
names = json.load(sys.stdin)
symbols = {}
for name in names:
    try:
        s = prog.symbol(name)
        symbols[name] = [hex(s.address), s.size]
    except LookupError:
        symbols[name] = None


def frames_of(thread):
    out = []
    for f in thread.stack_trace():
        try:
            pc = f.pc
        except LookupError:
            break
        try:
            out.append([hex(pc), prog.symbol(pc if f.interrupted else pc - 1).name])
        except LookupError:
            out.append([hex(pc), None])
    return out


panicking = []
for t in prog.threads():
    try:
        fr = frames_of(t)
    except Exception:
        continue
    if any(name == 'panic' for _, name in fr):
        panicking = fr
        break
print(json.dumps({'symbols': symbols, 'frames': panicking}))
