import { DbgError } from '../common/errors.js';
import { DW_AT, DW_ATE, DW_FORM, DW_TAG } from '../symbols/dwarf/dwarf-constants.js';
import type { Die, DieRef, DwarfInfo } from '../symbols/dwarf/dwarf-info.js';
import { resolveType, voidType, type ArrayType, type CompoundType, type Enumerator, type Member, type Qualifier, type Type } from './type.js';

/**
 * Types of one file's DWARF, built from DIEs on demand and kept by DIE.
 *
 * Lookups by name go through the DwarfInfo's index of top-level DIEs. A struct that a unit only
 * declares is completed from a unit that defines it, as gdb does, so `struct task_struct *` met
 * in a file that never includes its definition still prints its members.
 */

const COMPOUND: Record<number, CompoundType['kind']> = {
  [DW_TAG.structure_type]: 'struct',
  [DW_TAG.union_type]: 'union',
  [DW_TAG.class_type]: 'class',
};

/** Array bounds past this are refused as absurd (no real array has 2^32 elements of a type). */
const MAX_ARRAY_LENGTH = 2 ** 32;

export interface VariableInfo {
  readonly name: string;
  readonly type: Type;
  readonly die: Die;
}

export class DwarfTypes {
  private readonly byDie = new Map<DieRef, Type>();

  constructor(readonly dwarf: DwarfInfo) {}

  /**
   * The type called `name`: `struct task`, `union u`, `enum e`, a typedef or base type name
   * (`pid_t`, `unsigned int`), or a bare tag (`task`) when no typedef has that name. Trailing `*`
   * make pointers. Undefined when this file does not define it. `near`: a link-time code address
   * whose unit likely defines it (DwarfInfo.find), looked in first.
   */
  lookup(name: string, near?: bigint): Type | undefined {
    const text = name.trim().replace(/\s+/g, ' ');
    const stars = /\s*(\*+)$/.exec(text);
    if (stars) {
      const inner = this.lookup(text.slice(0, stars.index), near);
      if (!inner) return undefined;
      let t = inner;
      for (let i = 0; i < stars[1]!.length; i++) t = { kind: 'pointer', size: this.pointerSize(), target: t };
      return t;
    }
    const m = /^(struct|union|class|enum) (.+)$/.exec(text);
    if (m) {
      const tags = m[1] === 'enum' ? [DW_TAG.enumeration_type] : m[1] === 'union' ? [DW_TAG.union_type] : [DW_TAG.structure_type, DW_TAG.class_type];
      return this.byTag(m[2]!, tags, near);
    }
    if (text === 'void') return voidType;
    return this.byTag(text, [DW_TAG.typedef, DW_TAG.base_type, DW_TAG.unspecified_type], near) ?? this.byTag(text, [DW_TAG.structure_type, DW_TAG.class_type, DW_TAG.union_type, DW_TAG.enumeration_type], near);
  }

  private byTag(name: string, tags: readonly number[], near?: bigint): Type | undefined {
    const def = this.dwarf.find(name, (e) => tags.includes(e.tag) && !e.declaration, near) ?? this.dwarf.lookup(name).find((e) => tags.includes(e.tag));
    return def ? this.typeAt(def.ref) : undefined;
  }

  private pointerSize(): number {
    return this.dwarf.eachUnit().next().value?.addressSize ?? (this.dwarf.elf.is64 ? 8 : 4);
  }

  /** The global variable called `name` and its type (from its declaration when the definition has none). */
  variable(name: string): VariableInfo | undefined {
    // The first DIE of that name will do (units are read only until it is found), unless it is a
    // declaration whose type is incomplete (`extern int a[];`): then the definition is looked for.
    // A kernel's definitions often have no name of their own (DW_AT_specification to an extern).
    const first = this.dwarf.find(name, (e) => e.tag === DW_TAG.variable);
    if (!first) return undefined;
    let die = this.dwarf.die(first.ref);
    if (!die.has(DW_AT.location)) {
      const t = resolveType(this.typeOfVariable(die) ?? voidType);
      if (t.kind === 'void' || (t.kind === 'array' && t.length === undefined)) {
        const dies = this.dwarf.lookup(name).filter((e) => e.tag === DW_TAG.variable).map((e) => this.dwarf.die(e.ref));
        die = dies.find((d) => d.has(DW_AT.location)) ?? die;
      }
    }
    let typed: Die | undefined = die;
    for (let i = 0; typed && !typed.has(DW_AT.type) && i < 4; i++) typed = typed.refDie(DW_AT.specification) ?? typed.refDie(DW_AT.abstract_origin);
    if (!typed) return undefined;
    return { name, die, type: this.typeOf(typed) };
  }

  private typeOfVariable(d: Die): Type | undefined {
    let typed: Die | undefined = d;
    for (let i = 0; typed && !typed.has(DW_AT.type) && i < 4; i++) typed = typed.refDie(DW_AT.specification) ?? typed.refDie(DW_AT.abstract_origin);
    return typed ? this.typeOf(typed) : undefined;
  }

  /** The type a DIE's DW_AT_type names (void when it has none). */
  typeOf(d: Die): Type {
    const r = d.ref(DW_AT.type);
    return r === undefined ? voidType : this.typeAt(r);
  }

  typeAt(ref: DieRef): Type {
    const hit = this.byDie.get(ref);
    if (hit) return hit;
    const t = this.build(this.dwarf.die(ref));
    this.byDie.set(ref, t);
    return t;
  }

  private build(d: Die): Type {
    const self = this;
    switch (d.tag) {
      case DW_TAG.base_type:
        return this.baseType(d);
      case DW_TAG.unspecified_type:
        return voidType;
      case DW_TAG.pointer_type:
      case DW_TAG.reference_type:
      case DW_TAG.rvalue_reference_type:
      case DW_TAG.ptr_to_member_type: {
        const size = d.uint(DW_AT.byte_size) ?? d.unit.addressSize;
        const reference = d.tag === DW_TAG.reference_type ? '&' : d.tag === DW_TAG.rvalue_reference_type ? '&&' : undefined;
        let target: Type | undefined;
        return {
          kind: 'pointer',
          size,
          ...(reference ? { reference } : {}),
          get target() {
            return (target ??= self.typeOf(d));
          },
        } as Type;
      }
      case DW_TAG.const_type:
      case DW_TAG.volatile_type:
      case DW_TAG.restrict_type:
      case DW_TAG.atomic_type: {
        const q: Qualifier = d.tag === DW_TAG.const_type ? 'const' : d.tag === DW_TAG.volatile_type ? 'volatile' : d.tag === DW_TAG.restrict_type ? 'restrict' : '_Atomic';
        let target: Type | undefined;
        return {
          kind: 'qualified',
          qualifiers: [q],
          get target() {
            return (target ??= self.typeOf(d));
          },
        };
      }
      case DW_TAG.typedef: {
        let target: Type | undefined;
        return {
          kind: 'typedef',
          name: d.name === undefined ? '(anonymous typedef)' : this.dwarf.scopePrefix(d) + d.name,
          get target() {
            return (target ??= self.typeOf(d));
          },
        };
      }
      case DW_TAG.structure_type:
      case DW_TAG.union_type:
      case DW_TAG.class_type:
        return this.compound(d);
      case DW_TAG.enumeration_type:
        return this.enumType(d);
      case DW_TAG.array_type:
        return this.arrayType(d);
      case DW_TAG.subroutine_type:
      case DW_TAG.subprogram: {
        let params: Type[] | undefined;
        let variadic = false;
        let returns: Type | undefined;
        return {
          kind: 'function',
          get returns() {
            return (returns ??= self.typeOf(d));
          },
          get params() {
            if (!params) {
              params = [];
              for (const c of d.children()) {
                if (c.tag === DW_TAG.formal_parameter) params.push(self.typeOf(c));
                else if (c.tag === DW_TAG.unspecified_parameters) variadic = true;
              }
            }
            return params;
          },
          get variadic() {
            void this.params;
            return variadic;
          },
        };
      }
      default:
        throw new DbgError('corrupt', `${this.dwarf.name}: ${d.describe()} is used as a type but has tag 0x${d.tag.toString(16)}, which is not one`);
    }
  }

  private baseType(d: Die): Type {
    const name = d.name ?? '(unnamed base type)';
    const size = d.uint(DW_AT.byte_size) ?? 0;
    const enc = d.uint(DW_AT.encoding);
    switch (enc) {
      case DW_ATE.boolean:
        return { kind: 'bool', name, size };
      case DW_ATE.float:
      case DW_ATE.complex_float:
        return { kind: 'float', name, size };
      case DW_ATE.signed_char:
        return { kind: 'int', name, size, signed: true, isChar: true };
      case DW_ATE.unsigned_char:
        return { kind: 'int', name, size, signed: false, isChar: true };
      case DW_ATE.signed:
        return { kind: 'int', name, size, signed: true, isChar: false };
      case DW_ATE.UTF:
        return { kind: 'int', name, size, signed: false, isChar: size === 1 };
      default:
        return { kind: 'int', name, size, signed: false, isChar: false };
    }
  }

  private compound(d: Die): Type {
    const kind = COMPOUND[d.tag]!;
    const tag = d.name === undefined ? undefined : this.dwarf.scopePrefix(d) + d.name;
    if (d.flag(DW_AT.declaration) && tag !== undefined) {
      // A declaration: the definition lives in another unit, if anywhere. Looked for only when
      // the size or the members are wanted: a pointer to it prints without (on a kernel the
      // search can read many units).
      let def: CompoundType | null | undefined;
      const definition = (): CompoundType | null => {
        if (def === undefined) {
          const e = this.dwarf.find(tag, (x) => !x.declaration && COMPOUND[x.tag] === kind);
          const t = e && e.ref !== d.id ? this.typeAt(e.ref) : undefined;
          def = t && (t.kind === 'struct' || t.kind === 'union' || t.kind === 'class') ? t : null;
        }
        return def;
      };
      return {
        kind,
        tag,
        get size() {
          return definition()?.size;
        },
        get members() {
          return definition()?.members ?? [];
        },
      };
    }
    const size = d.uint(DW_AT.byte_size);
    const self = this;
    let members: Member[] | undefined;
    return {
      kind,
      ...(tag !== undefined ? { tag } : {}),
      ...(size !== undefined ? { size } : {}),
      get members() {
        return (members ??= self.members(d));
      },
    };
  }

  private members(d: Die): Member[] {
    const out: Member[] = [];
    const big = !this.dwarf.sections.littleEndian;
    for (const c of d.children()) {
      if (c.tag === DW_TAG.inheritance) {
        const self = this;
        let type: Type | undefined;
        out.push({
          bitOffset: (c.uint(DW_AT.data_member_location) ?? 0) * 8,
          base: true,
          get type() {
            return (type ??= self.typeOf(c));
          },
        });
        continue;
      }
      if (c.tag !== DW_TAG.member) continue;
      if (c.flag(DW_AT.declaration)) continue; // a C++ static member
      const name = c.name;
      let byteOffset = c.uint(DW_AT.data_member_location);
      if (byteOffset === undefined) {
        const loc = c.attr(DW_AT.data_member_location);
        // DWARF 2: a location expression DW_OP_plus_uconst N.
        if (loc && Buffer.isBuffer(loc.value) && loc.value[0] === 0x23) byteOffset = uleb(loc.value, 1);
      }
      let bitOffset = (byteOffset ?? 0) * 8;
      const bitSize = c.uint(DW_AT.bit_size);
      const dataBit = c.uint(DW_AT.data_bit_offset);
      if (dataBit !== undefined) bitOffset = dataBit;
      else if (bitSize !== undefined && c.has(DW_AT.bit_offset)) {
        // DWARF 2/3: bit_offset counts from the most significant bit of a storage unit of
        // byte_size bytes at data_member_location.
        const storage = (c.uint(DW_AT.byte_size) ?? 0) * 8;
        const fromMsb = c.uint(DW_AT.bit_offset) ?? 0;
        bitOffset += big ? fromMsb : storage - fromMsb - bitSize;
      }
      const self = this;
      let type: Type | undefined;
      out.push({
        ...(name !== undefined ? { name } : {}),
        bitOffset,
        ...(bitSize !== undefined ? { bitSize } : {}),
        get type() {
          return (type ??= self.typeOf(c));
        },
      });
    }
    return out;
  }

  private enumType(d: Die): Type {
    let signed = false;
    let size = d.uint(DW_AT.byte_size);
    const under = d.ref(DW_AT.type);
    if (under !== undefined) {
      const u = this.typeAt(under);
      if (u.kind === 'int') {
        signed = u.signed;
        size ??= u.size;
      }
    }
    if (d.flag(DW_AT.declaration) && d.name !== undefined) {
      const def = this.dwarf.find(d.name, (e) => !e.declaration && e.tag === DW_TAG.enumeration_type);
      if (def && def.ref !== d.id) return this.typeAt(def.ref);
    }
    let list: Enumerator[] | undefined;
    const tag = d.name === undefined ? undefined : this.dwarf.scopePrefix(d) + d.name;
    const bits = (size ?? 4) * 8;
    return {
      kind: 'enum',
      ...(tag !== undefined ? { tag } : {}),
      ...(size !== undefined ? { size } : {}),
      signed,
      get enumerators() {
        if (!list) {
          list = [];
          for (const c of d.children()) {
            if (c.tag !== DW_TAG.enumerator) continue;
            const v = c.constant(DW_AT.const_value) ?? 0n;
            list.push({ name: c.name ?? '?', value: signed ? BigInt.asIntN(bits, v) : BigInt.asUintN(bits, v) });
          }
        }
        return list;
      },
    };
  }

  private arrayType(d: Die): Type {
    const dims: (number | undefined)[] = [];
    const dynamics: (ArrayType['dynamic'] | undefined)[] = [];
    for (const c of d.children()) {
      if (c.tag !== DW_TAG.subrange_type && c.tag !== DW_TAG.enumeration_type) continue;
      let n: number | undefined;
      const lower = c.constant(DW_AT.lower_bound) ?? 0n;
      // A VLA's bound: an expression (exprloc) or a reference to the variable holding it.
      const bound = c.attr(DW_AT.count) ?? c.attr(DW_AT.upper_bound);
      const isCount = c.has(DW_AT.count);
      const dynamic = bound && Buffer.isBuffer(bound.value) ? { expr: bound.value } : bound && isRefForm(bound.form) ? { variable: c.refDie(bound.at) } : undefined;
      dynamics.push(dynamic ? { ...dynamic, lower, count: isCount } : undefined);
      const count = dynamic ? undefined : c.constant(DW_AT.count);
      const upper = dynamic ? undefined : c.constant(DW_AT.upper_bound);
      let v: bigint | undefined;
      if (count !== undefined && typeof c.attr(DW_AT.count)!.value !== 'object') v = count;
      else if (upper !== undefined && typeof c.attr(DW_AT.upper_bound)!.value !== 'object') {
        // gcc writes the upper bound of `T x[]` / `T x[0]` as -1 (all ones in data forms).
        const up = BigInt.asIntN(64, upper);
        v = up < 0n && up === -1n ? 0n : up - lower + 1n;
      }
      if (v !== undefined) {
        if (v < 0n || v > BigInt(MAX_ARRAY_LENGTH)) throw new DbgError('corrupt', `${this.dwarf.name}: array ${d.describe()} has an absurd bound ${v} (more than 2^32 elements)`);
        n = Number(v);
      }
      dims.push(n);
    }
    if (dims.length === 0) dims.push(undefined);
    const self = this;
    let elem: Type | undefined;
    const element = (): Type => (elem ??= self.typeOf(d));
    let t: Type | undefined;
    for (let i = dims.length - 1; i >= 0; i--) {
      const inner = t;
      const length = dims[i];
      const dynamic = dynamics[i];
      t = {
        kind: 'array',
        ...(length !== undefined ? { length } : {}),
        ...(dynamic ? { dynamic } : {}),
        get element() {
          return inner ?? element();
        },
      };
    }
    return t!;
  }
}

/** DW_FORM_ref1/2/4/8/udata, ref_addr: a bound that names a DIE. */
function isRefForm(form: number): boolean {
  return form === DW_FORM.ref1 || form === DW_FORM.ref2 || form === DW_FORM.ref4 || form === DW_FORM.ref8 || form === DW_FORM.ref_udata || form === DW_FORM.ref_addr;
}

function uleb(b: Buffer, at: number): number {
  let v = 0;
  let mul = 1;
  for (let i = at; i < b.length; i++) {
    v += (b[i]! & 0x7f) * mul;
    if ((b[i]! & 0x80) === 0) break;
    mul *= 128;
  }
  return v;
}
