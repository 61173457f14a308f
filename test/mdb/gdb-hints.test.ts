import { describe, expect, it } from 'vitest';
import { gdbHint } from '../../src/mdb/gdb-hints.js';

describe('gdb habits', () => {
  it('name the MDB command that does the same', () => {
    expect(gdbHint('bt')).toBe("gdb's bt is $c or ::stack here (::stack -a for every thread)");
    expect(gdbHint('where')).toBe("gdb's where is $c or ::stack here (::stack -a for every thread)");
    expect(gdbHint('info registers')).toBe("gdb's info registers is $r or ::regs here");
    expect(gdbHint('i r')).toBe("gdb's info registers is $r or ::regs here");
    expect(gdbHint('x/4gx $rsp')).toBe("gdb's x/4gx is <rsp,0t4/J here (addr,count/format; ::formats lists the formats)");
    expect(gdbHint('x/8i $pc')).toBe("gdb's x/8i is <pc,0t8/i here (addr,count/format; ::formats lists the formats)");
    expect(gdbHint('x/s msg')).toBe("gdb's x/s is msg/s here (addr,count/format; ::formats lists the formats)");
    expect(gdbHint('p jiffies')).toBe("gdb's print is jiffies::print here (a variable by its type; jiffies/J reads 8 bytes at it, jiffies=K is the expression's value)");
    expect(gdbHint('break panic')).toBe("gdb's break is panic::bp here");
    expect(gdbHint('finish')).toBe("gdb's finish is ::step out here");
    expect(gdbHint('reverse-stepi')).toBe("gdb's reverse-stepi is ::rstep here");
  });

  it('leave MDB alone', () => {
    for (const l of ['::stack', 'main::dis', 'nosuch/X', '$c', 'info', 'p']) expect(gdbHint(l), l).toBeUndefined();
  });
});
