# drgn's answers about a Linux dump, as JSON, for test/os/linux/real-dumps.test.ts:
#   python3 drgn-oracle.py VMCORE VMLINUX
# panic_cpu, every task (for_each_task: pid, ppid, state letter, cpu, comm, address) with the pcs
# of its stack's real (not inlined) frames, the kernel log as drgn formats it, each CPU's
# current_task (per_cpu) and the loaded modules.
import json
import sys

import drgn
from drgn.helpers.linux.pid import for_each_task
from drgn.helpers.linux.printk import get_printk_records
from drgn.helpers.linux.list import list_for_each_entry
from drgn.helpers.linux.percpu import per_cpu
from drgn.helpers.linux.sched import task_cpu, task_state_to_char

prog = drgn.Program()
prog.set_core_dump(sys.argv[1])
prog.load_debug_info([sys.argv[2]])
tasks = []
for t in for_each_task(prog):
    try:
        pcs = [hex(f.pc) for f in prog.stack_trace(t) if not f.is_inline]
    except Exception as e:  # a running task without saved registers
        pcs = None
    tasks.append({
        'pid': t.pid.value_(),
        'ppid': t.real_parent.pid.value_(),
        'state': task_state_to_char(t),
        'cpu': task_cpu(t),
        'comm': t.comm.string_().decode(),
        'addr': hex(t.value_()),
        'pcs': pcs,
    })
log = [f'[{r.timestamp // 1000000000:5}.{r.timestamp % 1000000000 // 1000:06}] {r.text.decode(errors="replace")}' for r in get_printk_records(prog)]
current = [hex(per_cpu(prog['current_task'], cpu).value_()) for cpu in range(2)]
modules = [{'addr': hex(m.value_()), 'name': m.name.string_().decode(), 'base': hex(m.core_layout.base.value_()), 'size': m.core_layout.size.value_()}
           for m in list_for_each_entry('struct module', prog['modules'].address_of_(), 'list')]
print(json.dumps({'panic_cpu': prog['panic_cpu'].counter.value_(), 'tasks': tasks, 'log': log, 'current': current, 'modules': modules}))
