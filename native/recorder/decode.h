/*
 * The decoders of what native/recorder writes into a trace, as plain C over byte buffers (no
 * N-API, no Unicorn), so that the fuzzing harness (native/recorder/fuzz/) runs exactly the code
 * the addon runs. A trace is untrusted input: every length, shift and offset is checked before it
 * is used, and a malformed input returns DECODE_CORRUPT with nothing written outside `out`.
 * (Memory rows are decoded in TypeScript: src/store/line-rows.ts.)
 */
#ifndef DBG_RECORDER_DECODE_H
#define DBG_RECORDER_DECODE_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#define DECODE_OK 0
#define DECODE_CORRUPT (-1)
#define DECODE_JCACHE 4096

/* Each instruction costs at least one nibble: a stream of n bytes holds at most 2n. */
static inline int pcs_count_fits(size_t nbytes, uint64_t count) { return count <= (uint64_t)nbytes * 2; }

/*
 * The pc stream (format in recorder.c): `count` instructions into pc[]/vc[] (or, when `only`, just
 * the last one into pc[0]/vc[0]). pc and vc hold `only ? 1 : count` cells.
 */
static int pcs_decode(const uint8_t *p, size_t n, uint32_t count, int only, uint64_t *pc, uint8_t *vc) {
  uint64_t expected[16], prev[16];
  uint64_t jc[DECODE_JCACHE];
  memset(expected, 0xff, sizeof expected);
  memset(prev, 0xff, sizeof prev);
  memset(jc, 0xff, sizeof jc);
  int v = 0;
  size_t ni = 0, nmax = n * 2;
#define AT(i) (only ? 0 : (i))
#define TAKE(x)                                    \
  do {                                             \
    if (ni >= nmax) return DECODE_CORRUPT;         \
    x = (p[ni >> 1] >> ((ni & 1) * 4)) & 15;       \
    ni++;                                          \
  } while (0)
  for (uint32_t i = 0; i < count;) {
    unsigned a, b, c, s;
    uint64_t at;
    TAKE(a);
    if (a) {
      s = a;
      at = expected[v];
    } else {
      TAKE(b);
      if (b) {
        s = b;
        at = jc[(unsigned)((prev[v] * 0x9E3779B97F4A7C15ull) >> 52) & (DECODE_JCACHE - 1)];
      } else {
        TAKE(c);
        if (!c) {
          unsigned op, vv;
          TAKE(op);
          TAKE(vv);
          if (op != 1) return DECODE_CORRUPT;
          v = (int)vv;
          continue;
        }
        s = c;
        /* zigzag(pc - expected), 3 value bits a nibble: at most 22 nibbles (66 bits) */
        uint64_t z = 0;
        for (int shift = 0;; shift += 3) {
          unsigned g;
          if (shift >= 64) return DECODE_CORRUPT;
          TAKE(g);
          z |= (uint64_t)(g & 7) << shift;
          if (!(g & 8)) break;
        }
        uint64_t d = (z >> 1) ^ (0 - (z & 1));
        at = expected[v] + d;
        jc[(unsigned)((prev[v] * 0x9E3779B97F4A7C15ull) >> 52) & (DECODE_JCACHE - 1)] = at;
      }
    }
    pc[AT(i)] = at;
    vc[AT(i)] = (uint8_t)v;
    prev[v] = at;
    expected[v] = at + s;
    i++;
  }
#undef TAKE
#undef AT
  return DECODE_OK;
}

/* One LEB128 varint of at most 64 bits from d[*pos..n); DECODE_CORRUPT when cut short or longer. */
static inline int read_varint(const uint8_t *d, size_t n, size_t *pos, uint64_t *out) {
  uint64_t v = 0;
  for (int sh = 0;; sh += 7) {
    if (*pos >= n || sh >= 64) return DECODE_CORRUPT;
    uint8_t b = d[(*pos)++];
    if (sh == 63 && (b & 0x7e)) return DECODE_CORRUPT; /* bits beyond 64 */
    v |= (uint64_t)(b & 0x7f) << sh;
    if (!(b & 0x80)) break;
  }
  *out = v;
  return DECODE_OK;
}

/*
 * A delta checkpoint (pairs of varint zero-run, varint literal-run + literals, XORed onto the key
 * image) applied in place to `o`, a copy of the key image of kn bytes.
 */
static int ckpt_apply(uint8_t *o, size_t kn, const uint8_t *d, size_t dn) {
  size_t i = 0, pos = 0;
  while (pos < dn) {
    uint64_t z, l;
    if (read_varint(d, dn, &pos, &z) || read_varint(d, dn, &pos, &l)) return DECODE_CORRUPT;
    if (z > kn - i) return DECODE_CORRUPT;
    i += (size_t)z;
    if (l > kn - i || l > dn - pos) return DECODE_CORRUPT;
    for (size_t q = 0; q < (size_t)l; q++) o[i + q] ^= d[pos + q];
    i += (size_t)l;
    pos += (size_t)l;
  }
  return DECODE_OK;
}

#endif
