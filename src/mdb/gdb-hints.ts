/**
 * What a gdb user types, and the MDB command that does it: added to the error of a line that
 * failed, so `bt` answers `unknown symbol "bt" …; gdb's bt is $c or ::stack here`.
 */

const X_FORMATS: Record<string, string> = { b: 'B', h: 'x', w: 'X', g: 'J', i: 'i', s: 's', c: 'c' };

/** The MDB way to do what `line` asks in gdb's language, or undefined when it is not gdb's. */
export function gdbHint(line: string): string | undefined {
  const l = line.trim();
  const words = l.split(/\s+/);
  const [cmd, ...rest] = words;
  const arg = rest.join(' ');
  const x = /^x\/(\d*)([a-z]*)\s+(.+)$/.exec(l);
  if (x) {
    const [, count, letters, addr] = x;
    const size = [...letters!].find((c) => 'bhwg'.includes(c)) ?? 'w';
    const fmt = [...letters!].find((c) => 'is'.includes(c)) ?? X_FORMATS[size]!;
    return `gdb's x/${count}${letters} is ${addr!.replace(/^\$/, '<')}${count ? `,0t${count}` : ''}/${fmt} here (addr,count/format; ::formats lists the formats)`;
  }
  switch (cmd) {
    case 'bt':
    case 'backtrace':
    case 'where':
      return `gdb's ${cmd} is $c or ::stack here (::stack -a for every thread)`;
    case 'info':
    case 'i': {
      const what = rest[0] ?? '';
      if ('registers'.startsWith(what) && what.length >= 1) return `gdb's info registers is $r or ::regs here`;
      if ('threads'.startsWith(what) && what.length >= 2) return `gdb's info threads is ::threads here`;
      if ('breakpoints'.startsWith(what) && what.length >= 1) return `gdb's info breakpoints is ::events here`;
      if ('symbol'.startsWith(what) && what.length >= 2) return `gdb's info symbol is ADDR::nm here`;
      return undefined;
    }
    case 'p':
    case 'print':
      return arg ? `gdb's print is ${arg}::print here (a variable by its type; ${arg}/J reads 8 bytes at it, ${arg}=K is the expression's value)` : undefined;
    case 'b':
    case 'break':
      return arg ? `gdb's break is ${arg}::bp here` : undefined;
    case 'watch':
      return arg ? `gdb's watch is ${arg}::wp -w -L 8 here` : undefined;
    case 'continue':
      return `gdb's continue is :c here`;
    case 's':
    case 'si':
    case 'step':
    case 'stepi':
      return `gdb's ${cmd} is :s here`;
    case 'n':
    case 'ni':
    case 'next':
    case 'nexti':
      return `gdb's ${cmd} is ::step over here`;
    case 'finish':
      return `gdb's finish is ::step out here`;
    case 'disassemble':
    case 'disas':
      return `gdb's disassemble is ${arg || '.'}::dis here`;
    case 'thread':
      return arg ? `gdb's thread ${arg} is ${arg}::thread here (0t${arg} if it is decimal above 9)` : undefined;
    case 'quit':
    case 'q':
      return `gdb's quit is ::quit here (or Ctrl-D)`;
    case 'reverse-stepi':
    case 'rsi':
      return `gdb's ${cmd} is ::rstep here`;
    case 'reverse-continue':
    case 'rc':
      return `gdb's ${cmd} is ::rcont here`;
    default:
      return undefined;
  }
}
