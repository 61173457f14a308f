/*
 * Passes over a whole ELF64 little-endian symbol table for src/symbols/compact-symbol-table.ts,
 * which otherwise makes them in JavaScript. They run once per table, over a kernel's 119,000
 * entries: code that runs once is interpreted, and these loops cost 30-60 ms of CPU there against
 * 2-3 ms here.
 *
 *   badName(raw, stringsLength) -> the first entry whose st_name lies outside the string table
 *                                  (0 aside), or -1
 *   order(raw, strings, biasHi, biasLo) -> { order, hi, lo, runs }
 *   map(fd, offset, length) -> a Buffer over the file's bytes mapped read-only (MAP_PRIVATE), or
 *                              null when mmap fails: the table's sections without a read into
 *                              new memory (5.3 MB for a kernel's, 1300 new pages at ~15 us each on
 *                              the bench machine; a mapping's faults each map 16 pages of the
 *                              page cache). Unmapped when the Buffer is collected. The file must
 *                              not shrink while it is mapped (a read past its end is SIGBUS):
 *                              dbg maps only files it opened to read, at ranges inside their size.
 *
 *   raw      the table's bytes (Elf64_Sym: u32 st_name, u8 st_info, u8 st_other, u16 st_shndx,
 *            u64 st_value, u64 st_size), a whole number of 24-byte entries or the tail ignored
 *   strings  its string table
 *
 * order() is CompactSymbolTable's address index: the kept symbols (named, defined, not a
 * section, file or TLS symbol) by run-time address (st_value + bias, unless SHN_ABS), then
 * SymbolTable's rank (a stable LSD radix sort), then name down, then entry number, as
 * Uint32Arrays of entry numbers (order) and of their addresses' high and low words (hi, lo).
 * Names are compared here when they are ASCII (a kernel has runs of thousands of aliases, such
 * as its __kstrtabns_ symbols); `runs` lists the runs of one address and rank that hold any other
 * name, [start, end) pairs of positions in order, for the caller to sort as JavaScript compares.
 */
#include <node_api.h>
#include <stdint.h>
#include <sys/mman.h>
#include <unistd.h>
#include <stdlib.h>
#include <string.h>

#define ENTRY 24
#define SHN_ABS 0xfff1
#define STT_SECTION 3
#define STT_FILE 4
#define STT_TLS 6

static uint32_t u32(const uint8_t *p) { uint32_t v; memcpy(&v, p, 4); return v; }
static uint16_t u16(const uint8_t *p) { uint16_t v; memcpy(&v, p, 2); return v; }
static uint64_t u64(const uint8_t *p) { uint64_t v; memcpy(&v, p, 8); return v; }

static int bytes_arg(napi_env env, napi_value v, const uint8_t **data, size_t *len) {
  bool is;
  if (napi_is_typedarray(env, v, &is) != napi_ok || !is) return 0;
  napi_typedarray_type type;
  size_t n, offset;
  void *p;
  napi_value ab;
  if (napi_get_typedarray_info(env, v, &type, &n, &p, &ab, &offset) != napi_ok || type != napi_uint8_array) return 0;
  *data = p;
  *len = n;
  return 1;
}

static napi_value fail(napi_env env, const char *why) {
  napi_throw_type_error(env, NULL, why);
  return NULL;
}

static napi_value bad_name(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  const uint8_t *raw;
  size_t len;
  double slen;
  if (argc != 2 || !bytes_arg(env, argv[0], &raw, &len) || napi_get_value_double(env, argv[1], &slen) != napi_ok) {
    return fail(env, "badName(raw, stringsLength): raw is not a Uint8Array or stringsLength not a number");
  }
  size_t count = len / ENTRY;
  double found = -1;
  for (size_t i = 0; i < count; i++) {
    uint32_t name = u32(raw + i * ENTRY);
    if (name != 0 && name >= slen) {
      found = (double)i;
      break;
    }
  }
  napi_value out;
  napi_create_double(env, found, &out);
  return out;
}

/* A Uint32Array of n zeroed elements, and where its elements are. */
static napi_value u32_array(napi_env env, size_t n, uint32_t **data) {
  napi_value ab, ta;
  void *p;
  if (napi_create_arraybuffer(env, n * 4, &p, &ab) != napi_ok) return NULL;
  memset(p, 0, n * 4);
  if (napi_create_typedarray(env, napi_uint32_array, n, ab, 0, &ta) != napi_ok) return NULL;
  *data = p;
  return ta;
}

static int kinds_ok(int type) { return type == 2 /* FUNC */ || type == 10 /* GNU_IFUNC */ || type == 1 /* OBJECT */; }

/* Whether SymbolTable keeps the entry at `e`: named, defined, not a section, file or TLS symbol. */
static int kept(const uint8_t *e, const uint8_t *strings, size_t slen) {
  uint32_t name = u32(e);
  int type = e[4] & 0xf;
  return name != 0 && u16(e + 6) != 0 && type != STT_SECTION && type != STT_FILE && type != STT_TLS && !(name < slen && strings[name] == 0);
}

/*
 * One stable counting pass of an LSD radix sort: the entry numbers in `from` ordered into `to` by
 * a 16-bit digit of their keys (key32, by entry number), or by their 8-bit key8 when key32 is NULL.
 */
static void radix_pass(const uint32_t *from, uint32_t *to, uint32_t n, const uint32_t *key32, const uint8_t *key8, int shift, uint32_t *counts) {
  memset(counts, 0, 65536 * sizeof *counts);
#define DIGIT(e) (key32 ? (key32[e] >> shift) & 0xffff : key8[e])
  for (uint32_t j = 0; j < n; j++) counts[DIGIT(from[j])]++;
  uint32_t sum = 0;
  for (uint32_t d = 0; d < 65536; d++) {
    uint32_t c = counts[d];
    counts[d] = sum;
    sum += c;
  }
  for (uint32_t j = 0; j < n; j++) to[counts[DIGIT(from[j])]++] = from[j];
#undef DIGIT
}

/* For sort_by_name's comparisons (qsort passes no context). */
static const uint8_t *sort_raw, *sort_strings;

/* Name down, then entry number up (the order a stable sort leaves equal names in). */
static int name_down(const void *x, const void *y) {
  uint32_t a = *(const uint32_t *)x, b = *(const uint32_t *)y;
  int c = strcmp((const char *)sort_strings + u32(sort_raw + (size_t)a * ENTRY), (const char *)sort_strings + u32(sort_raw + (size_t)b * ENTRY));
  return c != 0 ? -c : (a > b) - (a < b);
}

/*
 * Sorts the `n` entries at `e` by name, greatest first, when every name is ASCII and ends inside
 * the string table; returns 0 (and leaves them) otherwise.
 */
static int sort_by_name(const uint8_t *raw, const uint8_t *strings, size_t slen, uint32_t *e, uint32_t n) {
  if (slen == 0 || strings[slen - 1] != 0) return 0;
  for (uint32_t i = 0; i < n; i++) {
    uint32_t at = u32(raw + (size_t)e[i] * ENTRY);
    if (at >= slen) return 0;
    for (const uint8_t *p = strings + at; *p; p++)
      if (*p >= 0x80) return 0;
  }
  sort_raw = raw;
  sort_strings = strings;
  qsort(e, n, sizeof *e, name_down);
  return 1;
}

static napi_value order(napi_env env, napi_callback_info info) {
  size_t argc = 4;
  napi_value argv[4];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  const uint8_t *raw, *strings;
  size_t len, slen;
  uint32_t bias_hi, bias_lo;
  if (argc != 4 || !bytes_arg(env, argv[0], &raw, &len) || !bytes_arg(env, argv[1], &strings, &slen) ||
      napi_get_value_uint32(env, argv[2], &bias_hi) != napi_ok || napi_get_value_uint32(env, argv[3], &bias_lo) != napi_ok) {
    return fail(env, "order(raw, strings, biasHi, biasLo): raw or strings is not a Uint8Array, or a bias word not a number");
  }
  uint64_t bias = ((uint64_t)bias_hi << 32) | bias_lo;
  uint32_t count = (uint32_t)(len / ENTRY);
  /* New pages cost more than these loops on a loaded machine: the keys by entry number, two
     Uint32Arrays of the result as the sort's buffers (the last pass lands in `order`, and `lo` is
     written after it), nothing else of the table's size. calloc: a fresh mapping's pages are not touched. */
  uint32_t n = 0;
  for (uint32_t i = 0; i < count; i++) n += kept(raw + (size_t)i * ENTRY, strings, slen);
  uint32_t *his = calloc((size_t)count + 1, 4), *los = calloc((size_t)count + 1, 4), *counts = calloc(65536, 4);
  uint8_t *ranks = calloc((size_t)count + 1, 1);
  uint32_t *o = NULL, *h = NULL, *l = NULL;
  napi_value out = NULL, order_array, hi_array, lo_array;
  if (!his || !los || !counts || !ranks) {
    fail(env, "order: out of memory");
    goto done;
  }
  if (!(order_array = u32_array(env, n, &o)) || !(hi_array = u32_array(env, n, &h)) || !(lo_array = u32_array(env, n, &l))) goto done;
  uint32_t at = 0;
  int one_high = 1;
  for (uint32_t i = 0; i < count; i++) {
    const uint8_t *e = raw + (size_t)i * ENTRY;
    if (!kept(e, strings, slen)) continue;
    uint64_t addr = u16(e + 6) == SHN_ABS ? u64(e + 8) : u64(e + 8) + bias;
    his[i] = (uint32_t)(addr >> 32);
    los[i] = (uint32_t)addr;
    /* SymbolTable's rank: functions and objects first, then globals, then sized ones (0 best). */
    ranks[i] = 7 - ((kinds_ok(e[4] & 0xf) ? 2 : 0) + ((e[4] >> 4) != 0 ? 1 : 0) + (u64(e + 16) != 0 ? 4 : 0));
    if (at > 0 && his[i] != his[l[0]]) one_high = 0;
    l[at++] = i;
  }
  /* Stable: rank, then the address's low word, then (when they differ) its high word; an odd
     number of passes from l, so the last lands in o. */
  radix_pass(l, o, n, NULL, ranks, 0, counts);
  radix_pass(o, l, n, los, NULL, 0, counts);
  radix_pass(l, o, n, los, NULL, 16, counts);
  if (!one_high) {
    radix_pass(o, l, n, his, NULL, 0, counts);
    radix_pass(l, o, n, his, NULL, 16, counts);
  }
  for (uint32_t k = 0; k < n; k++) {
    h[k] = his[o[k]];
    l[k] = los[o[k]];
  }
  /* Runs of equal address and rank: SymbolTable puts the greatest name first. Sorted here when
     every name of the run is ASCII (bytes compare as JavaScript compares the strings); any other
     run is listed, as [start, end) positions, for the caller to sort. Counted, then written. */
  uint32_t *pending = NULL, m = 0, cap = 0;
  for (uint32_t j = 0; j < n;) {
    uint32_t k = j + 1;
    while (k < n && h[k] == h[j] && l[k] == l[j] && ranks[o[k]] == ranks[o[j]]) k++;
    if (k - j > 1 && !sort_by_name(raw, strings, slen, o + j, k - j)) {
      if (m + 2 > cap) {
        uint32_t *p = realloc(pending, (cap = cap ? cap * 2 : 64) * sizeof *p);
        if (!p) {
          free(pending);
          fail(env, "order: out of memory");
          goto done;
        }
        pending = p;
      }
      pending[m++] = j;
      pending[m++] = k;
    }
    j = k;
  }
  uint32_t *r = NULL;
  napi_value runs_array = u32_array(env, m, &r);
  if (runs_array && m > 0) memcpy(r, pending, m * sizeof *r);
  free(pending);
  if (!runs_array) goto done;
  napi_create_object(env, &out);
  napi_set_named_property(env, out, "order", order_array);
  napi_set_named_property(env, out, "hi", hi_array);
  napi_set_named_property(env, out, "lo", lo_array);
  napi_set_named_property(env, out, "runs", runs_array);
done:
  free(his);
  free(los);
  free(counts);
  free(ranks);
  return out;
}

struct mapping {
  void *base;
  size_t length;
};

static void unmap(napi_env env, void *data, void *hint) {
  struct mapping *m = hint;
  munmap(m->base, m->length);
  free(m);
}

static napi_value map(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3];
  napi_get_cb_info(env, info, &argc, argv, NULL, NULL);
  int32_t fd;
  int64_t offset, length;
  if (argc != 3 || napi_get_value_int32(env, argv[0], &fd) != napi_ok || napi_get_value_int64(env, argv[1], &offset) != napi_ok ||
      napi_get_value_int64(env, argv[2], &length) != napi_ok || fd < 0 || offset < 0 || length <= 0) {
    return fail(env, "map(fd, offset, length): a descriptor, an offset and a positive length");
  }
  napi_value null;
  napi_get_null(env, &null);
  int64_t page = sysconf(_SC_PAGESIZE);
  int64_t start = offset - offset % page;
  struct mapping *m = malloc(sizeof *m);
  if (!m) return null;
  m->length = (size_t)(length + (offset - start));
  m->base = mmap(NULL, m->length, PROT_READ, MAP_PRIVATE, fd, start);
  if (m->base == MAP_FAILED) {
    free(m);
    return null;
  }
  napi_value buf;
  if (napi_create_external_buffer(env, (size_t)length, (uint8_t *)m->base + (offset - start), unmap, m, &buf) != napi_ok) {
    munmap(m->base, m->length);
    free(m);
    return null;
  }
  return buf;
}

static napi_value init(napi_env env, napi_value exports) {
  napi_property_descriptor props[] = {
      {"badName", NULL, bad_name, NULL, NULL, NULL, napi_default, NULL},
      {"order", NULL, order, NULL, NULL, NULL, napi_default, NULL},
      {"map", NULL, map, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, 3, props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
