/**
 * Where a Linux kernel's DWARF defines the types dbg reads late in its units: a function of the
 * file that defines each (Module.typeHomes), so that finding the type reads that one unit instead
 * of the hundreds before it. Types that the first units define (task_struct, module) need none.
 * A kernel where a function moved only costs the unit-by-unit search again.
 *
 *   struct inactive_task_frame    arch/x86/kernel/process.c (copy_thread), unwind_orc.c
 *   the printk ring's structs     kernel/printk/printk_ringbuffer.c (prb_reserve), printk.c
 */

const TASK_FRAME = ['copy_thread', '__unwind_start'];
const PRINTK = ['prb_reserve', 'vprintk_store'];

export const KERNEL_TYPE_HOMES: ReadonlyMap<string, readonly string[]> = new Map([
  ['struct inactive_task_frame', TASK_FRAME],
  ['struct fork_frame', TASK_FRAME],
  ...['printk_ringbuffer', 'prb_desc_ring', 'prb_data_ring', 'prb_desc', 'printk_info', 'prb_data_blk_lpos', 'dev_printk_info'].map((s) => [`struct ${s}`, PRINTK] as const),
]);
