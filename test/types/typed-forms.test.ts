/**
 * MDB's typed forms against gdb 13: `addr::list TYPE MEMBER` (a pointer to the next object, and
 * an embedded list_head-style node whose containers are yielded), `addr::array TYPE COUNT`,
 * `addr::printf FORMAT TYPE member...` (against gdb's printf), and `::print` into a pipe passing
 * member values, not text.
 */

import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Session } from '../../src/mdb/session.js';
import { openTarget } from '../../src/targets/open-target.js';
import { debuggee, gdbBatch, type Debuggee } from '../helpers/debuggee.js';
import { failure, run, runJson, sessionOn } from '../mdb/helpers.js';

let types: Debuggee;
let frames: Debuggee;
let s: Session;
let f: Session;

/** gdb's answers, one per command. */
function gdb(d: Debuggee, commands: readonly string[]): string[] {
  const out = gdbBatch(d.exe, d.core, commands.flatMap((c, i) => [`echo @@${i}\\n`, c]));
  return out.split(/^@@\d+\n/m).slice(1).map((p) => p.trim().replace(/^\$\d+ = /, ''));
}

const addr = (text: string) => BigInt(/0x[0-9a-f]+/.exec(text)![0]);

beforeAll(async () => {
  types = await debuggee('types');
  frames = await debuggee('frames');
  s = sessionOn(openTarget(types.core, {}));
  f = sessionOn(openTarget(frames.core, {}));
});
afterAll(() => {
  s?.target.close();
  f?.target.close();
});

describe('addr::list TYPE MEMBER', () => {
  it('follows a pointer member to NULL: the objects gdb reaches through ->next', async () => {
    const g = gdb(types, ['p item_head', 'p item_head->next', 'p item_head->next->next', 'p item_head->next->next->next']);
    const ours = (await runJson(s, '*item_head::list struct item next'))[0] as string[];
    expect(ours.map(BigInt)).toEqual(g.slice(0, 3).map(addr));
    expect(g[3]).toBe('(struct item *) 0x0');
  });

  it('follows an embedded list node around a circular list and yields the containing objects', async () => {
    const g = gdb(frames, ['p &jobs[0]', 'p &jobs[1]', 'p &jobs[2]']);
    expect((await run(f, 'jobs::list struct job link')).map((l) => BigInt(l))).toEqual(g.map(addr));
    // from the middle: around to where it started
    expect((await run(f, 'jobs+0x20::list struct job link')).map((l) => BigInt(l))).toEqual([g[1], g[2], g[0]].map((x) => addr(x!)));
  });

  it('refuses a member that is no list link, and an unknown type, in one line', async () => {
    expect((await failure(f, 'jobs::list struct job id')).message).toBe('::list: member id of struct job is int: neither a pointer to the next object nor a list node whose first member is one');
    expect((await failure(f, 'jobs::list struct nosuch link')).message).toMatch(/^::list: unknown type "struct nosuch link": /);
    expect((await failure(f, 'jobs::list struct job nosuch')).message).toMatch(/^failed to find member nosuch of struct job/);
  });
});

describe('addr::array and ::print into a pipe', () => {
  it('::array yields each element\'s address; ::print MEMBER in a pipe passes the member\'s value', async () => {
    const g = gdb(types, ['p &items[0]', 'p &items[1]', 'p &items[2]', 'p items[0].label', 'p items[1].label', 'p items[2].label']);
    expect((await run(s, 'items::array struct item 3')).map(BigInt)).toEqual(g.slice(0, 3).map(addr));
    const strings = await run(s, 'items::array struct item 3 | ::print struct item label | /s');
    expect(strings.map((l) => BigInt(l.split(':')[0]!))).toEqual(g.slice(3).map(addr));
    expect(strings.map((l) => l.split(': ')[1])).toEqual(['first', 'second', 'third']);
    // a signed member goes into the pipe as its value, not as text to re-parse
    expect((await run(s, 'items::array struct item 3 | ::print struct item hits | =D')).map((l) => l.trim())).toEqual(['-5', '5', '15']);
    // a struct member passes its address; no member, the object's
    expect(await run(s, 'items::print struct item next | ::print struct item name')).toEqual(['name = [ "item-1" ]']);
    expect(await run(s, 'items::array struct item 2 | ::print struct item | ::print struct item owner')).toEqual(['owner = 0x3e8', 'owner = 0x3e9']);
  });

  it('::array refuses what it cannot do, in one line', async () => {
    expect((await failure(s, '::array struct item 3')).message).toBe('::array needs the address of the first element (usage: addr::array TYPE COUNT)');
    expect((await failure(s, 'items::array struct item')).message).toBe('::array needs a type and a COUNT (usage: addr::array TYPE COUNT)');
    expect((await failure(s, 'items::array struct item 0t2000000')).message).toBe('::array: COUNT 2000000 is too large (at most 0t1000000)');
  });
});

describe('addr::printf', () => {
  it('prints members as gdb\'s printf prints the same expressions', async () => {
    const cases: [string, string, string][] = [
      ['"%-8s|%5d|%u|%#x\\n"', 'name hits owner owner', 'items[1].name, items[1].hits, items[1].owner, items[1].owner'],
      ['"%s %c %x\\n"', 'label raw[2] pos.x', 'items[2].label, items[2].raw[2], items[2].pos.x'],
      ['"%d %d %lu\\n"', 'bits.b bits.tail bits.wide', 'items[1].bits.b, items[1].bits.tail, items[1].bits.wide'],
      ['"%03d|%X|%o\\n"', 'pos.y hits owner', 'items[1].pos.y, items[1].hits, items[1].owner'],
    ];
    const g = gdb(types, cases.map(([fmt, , exprs]) => `printf ${fmt}, ${exprs}`));
    for (const [i, [fmt, members]] of cases.entries()) {
      const at = i === 1 ? '&items[2]' : '&items[1]';
      const base = gdb(types, [`p ${at}`])[0]!;
      expect((await run(s, `0x${addr(base).toString(16)}::printf ${fmt} struct item ${members}`)).join('\n'), `${fmt} ${members}`).toBe(g[i]);
    }
  });

  it('%a names the symbol a pointer member holds; a member through -> is read', async () => {
    expect(await run(s, '*item_head::printf "%a %s\\n" struct item handler next->label')).toEqual(['handle second']);
  });

  it('a format and its members that do not match are one-line errors', async () => {
    expect((await failure(s, 'items::printf "%d %d\\n" struct item hits')).message).toBe('::printf: the format has more conversions than the 1 member(s) given');
    expect((await failure(s, 'items::printf "%d\\n" struct item hits owner')).message).toBe('::printf: 2 member(s) given for 1 conversion(s) in the format');
    expect((await failure(s, 'items::printf "%s\\n" struct item hits')).message).toBe('::printf: %s needs a char array or pointer; member hits is volatile int');
  });
});
