import { DbgError } from '../common/errors.js';
import { hex } from '../common/format.js';
import type { SymbolSpace } from '../symbols/symbol-space.js';
import { followPath, readBits, readUnsigned, type ValueMemory } from './print-value.js';
import { resolveType, sizeOf, typeName, type Type } from './type.js';
import type { TypeSpace } from './type-space.js';

/**
 * Typed objects for dmods, in the spirit of drgn's Object: a type and an address, with member
 * access by name instead of offsets.
 *
 *   const o = objects(session);                      // from src/mdb/modules/types.ts
 *   for (const t of o.listForEach(o.object('runqueue').value(), 'struct task', 'next'))
 *     out.line(`${t.member('pid').value()} ${t.member('name').string()}`);
 *   const task = o.containerOf(ptr, 'struct task_struct', 'tasks');
 *
 * Every read goes through the target when asked (value(), string(), deref()), never before.
 */
export class TypedObject {
  constructor(
    readonly objects: ObjectSpace,
    readonly type: Type,
    readonly address: bigint,
    /** For a bit field: bits past address, and its width. */
    readonly bitShift = 0,
    readonly bitSize?: number,
  ) {}

  get size(): number | undefined {
    return sizeOf(this.type);
  }

  /** A member by MDB path: `pid`, `pos.x`, `grid[1][2]`, `next->name` (through pointers). */
  member(path: string): TypedObject {
    const r = followPath(this.type, this.address, path, this.objects.memory);
    return new TypedObject(this.objects, r.type, r.addr, r.bitShift, r.bitSize);
  }

  /** The object a pointer points at. */
  deref(): TypedObject {
    const r = resolveType(this.type);
    if (r.kind !== 'pointer') throw new DbgError('bad-input', `cannot dereference ${typeName(this.type)}: not a pointer`);
    return new TypedObject(this.objects, r.target, this.value());
  }

  /** Element i of an array, or of what a pointer points at (typed pointer arithmetic). */
  index(i: number | bigint): TypedObject {
    return this.member(`[${BigInt(i).toString(16)}]`);
  }

  /** The same address read as another type (`struct task *`, `unsigned long`). */
  cast(type: string | Type): TypedObject {
    return new TypedObject(this.objects, typeof type === 'string' ? this.objects.types.get(type) : type, this.address);
  }

  /** The value of an integer, enum, bool or pointer (a pointer's value is the address it holds). */
  value(): bigint {
    const r = resolveType(this.type);
    const mem = this.objects.memory;
    if (r.kind !== 'int' && r.kind !== 'bool' && r.kind !== 'enum' && r.kind !== 'pointer') {
      throw new DbgError('bad-input', `${typeName(this.type)} at ${hex(this.address)} has no scalar value (use member(), index() or address)`);
    }
    const size = r.size ?? 4;
    const signed = (r.kind === 'int' || r.kind === 'enum') && r.signed;
    const raw = this.bitSize !== undefined ? readBits(mem, this.address, this.bitShift, this.bitSize) : readUnsigned(mem, this.address, size);
    const bits = this.bitSize ?? size * 8;
    return signed ? BigInt.asIntN(bits, raw) : raw;
  }

  /** A char array's text up to its first NUL, or the string a char pointer points at. */
  string(max = 4096): string {
    const r = resolveType(this.type);
    let at = this.address;
    let limit = max;
    if (r.kind === 'pointer') at = this.value();
    else if (r.kind === 'array') limit = Math.min(max, r.length ?? max);
    else throw new DbgError('bad-input', `${typeName(this.type)} is not a char array or pointer`);
    const b = this.objects.memory.read(at, limit);
    const nul = b.indexOf(0);
    return b.toString('latin1', 0, nul < 0 ? b.length : nul);
  }
}

export class ObjectSpace {
  constructor(
    readonly types: TypeSpace,
    readonly symbols: SymbolSpace,
    readonly memory: ValueMemory,
    readonly pointerBytes: number,
  ) {}

  /** The global variable `name`, typed by its debug info. */
  object(name: string): TypedObject {
    const s = this.symbols.find(name);
    if (!s) throw new DbgError('no-symbol', `unknown symbol "${name}"`);
    const v = this.types.variable(s.name, s.module);
    if (!v) throw new DbgError('no-symbol', `no type data for ${name} in the debug info of ${s.module.name}`);
    return new TypedObject(this, v.type, s.addr);
  }

  /** An object of type `type` at `addr`. */
  at(addr: bigint, type: string | Type): TypedObject {
    return new TypedObject(this, typeof type === 'string' ? this.types.get(type) : type, addr);
  }

  /** The `type` object whose `member` is at `ptr` (the kernel's container_of). */
  containerOf(ptr: bigint, type: string, member: string): TypedObject {
    const t = this.types.get(type);
    const off = followPath(t, 0n, member, undefined).addr;
    return new TypedObject(this, t, ptr - off);
  }

  /**
   * The `type` objects of a NULL-terminated list whose `next` member points at the next object,
   * from `first` (an address). Stops at NULL, or with an error at a cycle.
   */
  *listForEach(first: bigint, type: string, next: string, max = 1_000_000): Generator<TypedObject> {
    const seen = new Set<bigint>();
    let at = first;
    while (at !== 0n) {
      if (seen.has(at)) throw new DbgError('corrupt', `list of ${type} cycles back to ${hex(at)} after ${seen.size} objects`);
      if (seen.size >= max) return;
      seen.add(at);
      const o = this.at(at, type);
      yield o;
      at = o.member(next).value();
    }
  }

  /**
   * The containers of a circular `list_head`-style list: `head` is the address of the head node,
   * whose first pointer is `next`; each node is `member` inside a `type`.
   */
  *listHeadForEach(head: bigint, type: string, member: string, max = 1_000_000): Generator<TypedObject> {
    const word = (a: bigint) => readUnsigned(this.memory, a, this.pointerBytes);
    let node = word(head);
    let n = 0;
    while (node !== head && node !== 0n && n++ < max) {
      yield this.containerOf(node, type, member);
      node = word(node);
    }
  }
}
