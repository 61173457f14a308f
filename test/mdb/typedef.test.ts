/**
 * ::typedef (MDB's synthetic types) beyond illumos's own tests (test/mdb/illumos/typedef): a
 * struct laid out by ::typedef has the offsets gcc gives the same declaration (gdb reads them from
 * the program's DWARF), values read through a synthetic type on a raw file, -r importing a
 * program's DWARF, -d, and every bad input as one line.
 */

import { execFileSync } from 'node:child_process';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openTarget } from '../../src/targets/open-target.js';
import { failure, rawSession, run, sessionOn, tempDir } from './helpers.js';

const tmp = tempDir('dbg-typedef-');
afterAll(() => tmp.cleanup());

const MIX = 'struct mix { char c; long l; short s[3]; int *p; double d; char tail; unsigned char u[0]; }';
const members = ['c', 'l', 's', 'p', 'd', 'tail', 'u'];
let exe = '';

beforeAll(() => {
  const src = join(tmp.dir, 'mix.c');
  writeFileSync(src, `${MIX};\nstruct mix mix_var;\nstruct rec { int a; long b; char name[6]; } rec_var;\nint main(void) { return 0; }\n`);
  exe = join(tmp.dir, 'mix');
  execFileSync('gcc', ['-O0', '-g', '-o', exe, src]);
});

/** What gdb says of `expr` in the program (the oracle for gcc's layout). */
function gdb(expr: string): bigint {
  const out = execFileSync('gdb', ['-batch', '-nx', '-ex', `print/x ${expr}`, exe], { encoding: 'utf8' });
  const m = /= (0x[0-9a-f]+)/.exec(out);
  if (!m) throw new Error(`gdb printed ${out}`);
  return BigInt(m[1]!);
}

describe('::typedef', () => {
  it('lays a struct out as gcc does (LP64): every offset and the size agree with gdb', async () => {
    const s = rawSession(tmp.dir, Buffer.alloc(64));
    await run(s, '::typedef -c LP64');
    await run(s, `::typedef "${MIX}" mix_t`);
    expect(await run(s, '::sizeof mix_t')).toEqual([`sizeof (mix_t) = 0x${gdb('sizeof(struct mix)').toString(16)}`]);
    for (const m of members) {
      const [line] = await run(s, `::offsetof mix_t ${m}`);
      const want = gdb(`(unsigned long)&((struct mix *)0)->${m}`);
      expect(line, m).toMatch(new RegExp(`^offsetof \\(mix_t, ${m}\\) = (0x)?${want.toString(16)},`));
    }
  });

  it('reads values through a synthetic type on a raw file; ::typedef -l lists what was made; -d forgets it', async () => {
    const bytes = Buffer.alloc(64);
    bytes.writeUInt32LE(0x11223344, 8);
    bytes.writeUInt32LE(0x55, 12);
    const s = rawSession(tmp.dir, bytes);
    await run(s, '::typedef -c lp64');
    await run(s, "::typedef 'struct pair { uint32_t lo; uint32_t hi; }' pair_t");
    await run(s, '::typedef pair_t couple_t');
    expect(await run(s, '8::print couple_t')).toEqual(['{', '    lo = 0x11223344', '    hi = 0x55', '}']);
    expect(await run(s, '8::print -t struct pair hi')).toEqual(['uint32_t hi = 0x55']);
    const list = await run(s, '::typedef -l');
    expect(list.slice(0, 3)).toEqual(['void', 'signed', 'unsigned']);
    expect(list.slice(-3)).toEqual(['struct pair', 'pair_t', 'couple_t']);
    await run(s, '::typedef -d');
    expect(await run(s, '::typedef -l')).toEqual([]);
    expect((await failure(s, '::sizeof pair_t')).message).toBe('::sizeof: unknown type "pair_t": no module is loaded');
  });

  it('-r FILE brings the types of a program with DWARF to a target without any', async () => {
    const s = rawSession(tmp.dir, Buffer.alloc(64));
    expect((await failure(s, '::sizeof struct rec')).message).toMatch(/^::sizeof: unknown type "struct rec"/);
    await run(s, `::typedef -r ${exe}`);
    expect(await run(s, '::sizeof struct rec')).toEqual([`sizeof (struct rec) = 0x${gdb('sizeof(struct rec)').toString(16)}`]);
    await run(s, '::typedef "struct outer { struct rec r; struct rec *next; }" outer_t');
    expect(await run(s, '::offsetof outer_t next')).toEqual([`offsetof (outer_t, next) = 0x${gdb('sizeof(struct rec)').toString(16)}, sizeof (...->next) = 8`]);
  });

  it("a name the target already has is refused; the target's type is found before a synthetic one", async () => {
    const s = sessionOn(openTarget(exe));
    expect((await failure(s, '::typedef int rec')).message).toBe('::typedef: rec already exists');
    await run(s, '::typedef -c ilp32');
    // The program's types come first (its `struct rec`, 8-byte `long int`); ILP32's names that
    // DWARF spells otherwise (`long`, CTF's spelling) are the synthetic ones.
    expect(await run(s, '::sizeof struct rec')).toEqual([`sizeof (struct rec) = 0x${gdb('sizeof(struct rec)').toString(16)}`]);
    expect(await run(s, '::sizeof long int')).toEqual(['sizeof (long int) = 8']);
    expect(await run(s, '::sizeof long')).toEqual(['sizeof (long) = 4']);
    expect(await run(s, '::sizeof ulong_t')).toEqual(['sizeof (ulong_t) = 4']);
  });

  it.each([
    ['::typedef -c lp128', '::typedef: invalid data model "lp128" (LP64, LP32 or ILP32)'],
    ['::typedef -l extra', '::typedef -l: unexpected argument "extra" (usage: '],
    ['::typedef -l -d', '::typedef: -l and -d exclude each other (usage: '],
    ['5::typedef -l', '::typedef takes no address (usage: '],
    ['::typedef -r /nonexistent/file', '::typedef -r /nonexistent/file: '],
    ['::typedef "struct { nosuch_t x; }" x_t', '::typedef: member x: type nosuch_t does not exist'],
    ['::typedef "struct s { int a; }" 9bad', '::typedef: the name "9bad" is not a valid C identifier'],
    ['::typedef "struct { int a }" a_t', "::typedef: the last member of struct {...} does not end with ';'"],
    ['::typedef "union { int a; char b[0]; }" u_t', '::typedef: flexible array members are only valid in structs (b)'],
    ['::typedef "struct { char b[0]; }" f_t', '::typedef: a struct needs members besides its flexible array member (b)'],
    ['::typedef "struct { int a[zz]; }" z_t', '::typedef: "zz" is not an array length (in a[zz])'],
    ['::typedef "struct { void v; }" v_t', '::typedef: member v: void has no size (void, a function or an incomplete type)'],
    ['::typedef "struct { int a; }"', '::typedef needs a type and a name (usage: '],
  ])('%s: %s', async (line, message) => {
    const s = rawSession(tmp.dir, Buffer.alloc(64));
    await run(s, '::typedef -c lp64');
    const e = await failure(s, line);
    expect(e.message.startsWith(message), e.message).toBe(true);
    expect(e.message).not.toContain('\n');
  });

  it('-c twice, and a second struct with the same tag, are refused', async () => {
    const s = rawSession(tmp.dir, Buffer.alloc(64));
    await run(s, '::typedef -c ilp32');
    expect((await failure(s, '::typedef -c lp64')).message).toBe('::typedef -c lp64: the intrinsic types exist already (void); ::typedef -d deletes them');
    await run(s, '::typedef "struct s { int a; }" s_t');
    expect((await failure(s, '::typedef "struct s { long b; }" t_t')).message).toBe('::typedef: type name struct s already in use');
    expect((await failure(s, '::typedef "struct q { int a; }" s_t')).message).toBe('::typedef: typedef name s_t already exists');
  });
});
