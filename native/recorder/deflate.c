/*
 * deflateRaw(src: Buffer, into: Buffer) -> number: `src` as raw DEFLATE (RFC 1951, what
 * zlib.inflateRawSync reads) into `into`, which must hold deflateRawBound(src.length) bytes; the
 * compressed length.
 *
 * The trace writer deflates each chunk's pc stream (schema.ts). zlib.deflateRawSync builds a zlib
 * stream for every call: ~300 KiB of fresh state, zeroed, one page fault per 4 KiB on the writer's
 * thread every chunk (perf -e page-faults on the store-loop recording: a tenth of the process's
 * faults, at 15-40 us each on a virtualised host). libdeflate compresses a whole buffer with one
 * compressor kept per thread (the writer's: a worker thread; a compressor is not thread-safe), and
 * at level 1 is faster than zlib's level 1 besides.
 */
#include <libdeflate.h>
#include <node_api.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "records.h"
#include "seen.h"

static pthread_key_t key;
static pthread_once_t once = PTHREAD_ONCE_INIT;
static void free_compressor(void *c) { libdeflate_free_compressor(c); }
static void make_key(void) { pthread_key_create(&key, free_compressor); }

static struct libdeflate_compressor *compressor(void) {
  pthread_once(&once, make_key);
  struct libdeflate_compressor *c = pthread_getspecific(key);
  if (!c) {
    c = libdeflate_alloc_compressor(1);
    if (c) pthread_setspecific(key, c);
  }
  return c;
}

/* The calling thread's compressor, for sqlite-rows.c (a raw page image deflated in the writer's INSERT). */
struct libdeflate_compressor *dbg_compressor(void) { return compressor(); }

static napi_value fail(napi_env env, const char *msg) {
  napi_throw_error(env, NULL, msg);
  return NULL;
}

napi_value fn_deflate_raw_bound(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1], out;
  double n;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 1 || napi_get_value_double(env, argv[0], &n) != napi_ok || !(n >= 0 && n < 1e15))
    return fail(env, "deflateRawBound(length): bad arguments");
  struct libdeflate_compressor *c = compressor();
  if (!c) return fail(env, "deflateRawBound: out of memory");
  napi_create_double(env, (double)libdeflate_deflate_compress_bound(c, (size_t)n), &out);
  return out;
}

napi_value fn_deflate_raw(napi_env env, napi_callback_info info) {
  size_t argc = 2;
  napi_value argv[2], out;
  void *src, *dst;
  size_t ns, nd;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 2 || napi_get_buffer_info(env, argv[0], &src, &ns) != napi_ok ||
      napi_get_buffer_info(env, argv[1], &dst, &nd) != napi_ok)
    return fail(env, "deflateRaw(src, into): bad arguments");
  struct libdeflate_compressor *c = compressor();
  if (!c) return fail(env, "deflateRaw: out of memory");
  if (nd < libdeflate_deflate_compress_bound(c, ns)) return fail(env, "deflateRaw: `into` is shorter than deflateRawBound(src.length)");
  size_t n = libdeflate_deflate_compress(c, src, ns, dst, nd);
  if (!n && ns) return fail(env, "deflateRaw: the output did not fit");
  napi_create_double(env, (double)n, &out);
  return out;
}

/*
 * packPages(ram: Buffer, at: Uint32Array, seen: Uint8Array) -> Buffer: the 4 KiB pages `at`
 * (page indexes into `ram`) as the trace's page images, for the writer's thread: per page its
 * index (32-bit little-endian), a 16-bit length n and n bytes of raw DEFLATE, or n = 0 and the
 * page's 4096 bytes (which the writer deflates with libdeflate). `seen` has a byte per page of
 * RAM: SEEN_IMAGE for the pages whose image the trace holds (ram_init's and every one packed). A
 * page of none that is still all zero is left out (a reader takes a page no image holds for
 * zero), as are the other 511 pages of a fresh transparent huge page (recorder.c, dirty pages):
 * the first time, it is marked SEEN_ZERO for dirtyRelease.
 *
 * A guest that boots writes much of its RAM with fills (xv6 fills each of its 57,000 free pages
 * with 1s, Linux zeroes them): libdeflate costs ~19 us a page whatever it holds (level 1 clears
 * its hash table every call), which put the writer's thread behind the guest. Such pages are runs
 * of one byte with few bytes between; encoded here as runs (a literal, then length/distance-1
 * matches, in one fixed-Huffman block, RFC 1951 3.2.6) they cost well under a microsecond and are
 * no copy. A page whose runs would take more than RUN_BUDGET bytes is left for libdeflate.
 */
#define PACK_PAGE 4096u
#define RUN_BUDGET 1024u

typedef struct {
  uint8_t *out;
  size_t n, cap;
  uint64_t acc;
  unsigned bits;
} bitw;

static inline void put(bitw *w, uint32_t v, unsigned k) {
  w->acc |= (uint64_t)v << w->bits;
  w->bits += k;
  while (w->bits >= 8) {
    if (w->n < w->cap) w->out[w->n] = (uint8_t)w->acc;
    w->n++;
    w->acc >>= 8;
    w->bits -= 8;
  }
}

/* `code` (k bits) bit-reversed: Huffman codes are sent most significant bit first (RFC 1951 3.1.1). */
static uint32_t reversed(uint32_t code, unsigned k) {
  uint32_t r = 0;
  for (unsigned i = 0; i < k; i++) r |= ((code >> i) & 1u) << (k - 1 - i);
  return r;
}

/* The fixed Huffman codes, reversed for put(): literals 0-255, then symbols 256-287 (RFC 1951 3.2.6). */
static uint16_t lit_code[288];
static uint8_t lit_bits[288];
static pthread_once_t codes_once = PTHREAD_ONCE_INIT;
static void make_codes(void) {
  for (unsigned s = 0; s < 288; s++) {
    unsigned k = s < 144 ? 8 : s < 256 ? 9 : s < 280 ? 7 : 8;
    uint32_t code = s < 144 ? 0x30 + s : s < 256 ? 0x190 + (s - 144) : s < 280 ? s - 256 : 0xc0 + (s - 280);
    lit_code[s] = (uint16_t)reversed(code, k);
    lit_bits[s] = (uint8_t)k;
  }
}

static inline void put_symbol(bitw *w, unsigned sym) { put(w, lit_code[sym], lit_bits[sym]); }

/* A match of `len` (3..258) bytes at distance 1. */
static void put_run(bitw *w, unsigned len) {
  static const uint16_t base[29] = {3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258};
  static const uint8_t extra[29] = {0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0};
  unsigned s = 28;
  while (base[s] > len) s--;
  put_symbol(w, 257 + s);
  if (extra[s]) put(w, len - base[s], extra[s]);
  put(w, 0, 5); /* distance code 0 (five zero bits): distance 1 */
}

/* The length of the run of `b` at p[0..n), 8 bytes a step. */
static size_t run_of_narrow(const uint8_t *p, size_t n, uint8_t b) {
  uint64_t pat = 0x0101010101010101ull * b, x;
  size_t i = 0;
  for (; i + 8 <= n; i += 8) {
    memcpy(&x, p + i, 8);
    if (x != pat) break;
  }
  while (i < n && p[i] == b) i++;
  return i;
}

/*
 * The pages a booting guest fills are read whole here, from memory the cache no longer holds
 * (xv6: 73,000 pages, ~285 MiB, per boot): compared 128 bytes a step with AVX2 where the CPU has
 * it, else 64 with SSE2 (every x86-64 has it), a page costs ~0.35 us instead of ~0.63 cold
 * (~0.09 instead of ~0.22 in cache). Where the first 8 bytes already differ (a page of data, run
 * after short run) the narrow loop answers without the call.
 */
#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx2"))) static size_t wide_avx2(const uint8_t *p, size_t n, uint8_t b) {
  __m256i v = _mm256_set1_epi8((char)b);
  size_t i = 0;
  for (; i + 128 <= n; i += 128) {
    __m256i e0 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + i)), v), _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + i + 32)), v));
    __m256i e1 = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + i + 64)), v), _mm256_cmpeq_epi8(_mm256_loadu_si256((const __m256i *)(p + i + 96)), v));
    if ((uint32_t)_mm256_movemask_epi8(_mm256_and_si256(e0, e1)) != 0xffffffffu) break;
  }
  return i;
}

static size_t wide_sse2(const uint8_t *p, size_t n, uint8_t b) {
  __m128i v = _mm_set1_epi8((char)b);
  size_t i = 0;
  for (; i + 64 <= n; i += 64) {
    __m128i e0 = _mm_and_si128(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + i)), v), _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + i + 16)), v));
    __m128i e1 = _mm_and_si128(_mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + i + 32)), v), _mm_cmpeq_epi8(_mm_loadu_si128((const __m128i *)(p + i + 48)), v));
    if (_mm_movemask_epi8(_mm_and_si128(e0, e1)) != 0xffff) break;
  }
  return i;
}

/* How far whole steps of `b` go from p: the wide loop this CPU has (chosen once, see wide_pick). */
static size_t (*wide)(const uint8_t *, size_t, uint8_t);
static pthread_once_t wide_once = PTHREAD_ONCE_INIT;
static void wide_pick(void) {
  __builtin_cpu_init();
  wide = __builtin_cpu_supports("avx2") ? wide_avx2 : wide_sse2;
}
#endif

/* The length of the run of `b` at p[0..n). */
static size_t run_of(const uint8_t *p, size_t n, uint8_t b) {
  uint64_t pat = 0x0101010101010101ull * b, x;
  if (n < 8) return run_of_narrow(p, n, b);
  memcpy(&x, p, 8);
  if (x != pat) return run_of_narrow(p, 8, b);
#if defined(__x86_64__)
  size_t i = wide(p, n, b);
  return i + run_of_narrow(p + i, n - i, b);
#else
  return run_of_narrow(p, n, b);
#endif
}

/* `page` as runs into `out` (cap bytes): its length, or 0 when it does not fit. */
static size_t pack_runs(const uint8_t *page, uint8_t *out, size_t cap) {
  bitw w = {out, 0, cap, 0, 0};
  put(&w, 1, 1); /* BFINAL */
  put(&w, 1, 2); /* BTYPE 01: fixed Huffman codes */
  for (size_t i = 0; i < PACK_PAGE && w.n < cap;) {
    uint8_t b = page[i++];
    put_symbol(&w, b);
    size_t run = run_of(page + i, PACK_PAGE - i, b);
    i += run;
    while (run >= 3) {
      unsigned len = run > 258 ? 258 : (unsigned)run;
      if (run > 258 && run - 258 < 3) len = (unsigned)run - 3; /* leave a run a match can take */
      put_run(&w, len);
      run -= len;
    }
    while (run--) put_symbol(&w, b);
  }
  put_symbol(&w, 256); /* end of block */
  if (w.bits) put(&w, 0, 8 - w.bits);
  return w.n <= cap ? w.n : 0;
}

/* (stops at the first byte that is not: a page that begins with data costs nothing) */
static int zero_page(const uint8_t *p) { return p[0] == 0 && run_of(p + 1, PACK_PAGE - 1, 0) == PACK_PAGE - 1; }

napi_value fn_pack_pages(napi_env env, napi_callback_info info) {
  size_t argc = 3;
  napi_value argv[3], out;
  void *ram, *at, *seenp;
  size_t nram, nat, nseen;
  napi_typedarray_type type, tseen;
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok || argc < 3 || napi_get_buffer_info(env, argv[0], &ram, &nram) != napi_ok ||
      napi_get_typedarray_info(env, argv[1], &type, &nat, &at, NULL, NULL) != napi_ok || type != napi_uint32_array ||
      napi_get_typedarray_info(env, argv[2], &tseen, &nseen, &seenp, NULL, NULL) != napi_ok || tseen != napi_uint8_array)
    return fail(env, "packPages(ram: Buffer, at: Uint32Array, seen: Uint8Array): bad arguments");
  const uint32_t *pages = at;
  uint8_t *seen = seenp;
  pthread_once(&codes_once, make_codes);
#if defined(__x86_64__)
  pthread_once(&wide_once, wide_pick);
#endif
  if (nseen < nram / PACK_PAGE) return fail(env, "packPages: `seen` has fewer bytes than the RAM has pages");
  for (size_t k = 0; k < nat; k++)
    if ((uint64_t)pages[k] * PACK_PAGE + PACK_PAGE > nram) return fail(env, "packPages: a page index lies outside the RAM");
  /* worst case every page raw: one pass into scratch sized for it (kept per thread: fresh memory
     would fault on first touch every chunk), then one copy of what it holds */
  static __thread uint8_t *buf;
  static __thread size_t have;
  size_t cap = nat * (PAGE_RECORD_HEAD + PACK_PAGE);
  if (cap > have) {
    uint8_t *grown = realloc(buf, cap);
    if (!grown) return fail(env, "packPages: out of memory");
    buf = grown;
    have = cap;
  }
  size_t n = 0;
  for (size_t k = 0; k < nat; k++) {
    uint32_t p = pages[k];
    const uint8_t *page = (const uint8_t *)ram + (size_t)p * PACK_PAGE;
    if (seen[p] != SEEN_IMAGE && zero_page(page)) {
      if (seen[p] == SEEN_NONE) seen[p] = SEEN_ZERO;
      continue;
    }
    seen[p] = SEEN_IMAGE;
    memcpy(buf + n, &p, 4); /* little-endian: x86-64 and arm64 hosts */
    size_t m = pack_runs(page, buf + n + PAGE_RECORD_HEAD, RUN_BUDGET);
    if (m) {
      buf[n + 4] = (uint8_t)m;
      buf[n + 5] = (uint8_t)(m >> 8);
      n += PAGE_RECORD_HEAD + m;
    } else {
      buf[n + 4] = buf[n + 5] = 0;
      memcpy(buf + n + PAGE_RECORD_HEAD, page, PACK_PAGE);
      n += PAGE_RECORD_HEAD + PACK_PAGE;
    }
  }
  void *data;
  if (napi_create_buffer_copy(env, n, buf, &data, &out) != napi_ok) return fail(env, "packPages: out of memory");
  return out;
}
