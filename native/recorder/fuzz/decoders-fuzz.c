/*
 * Fuzzing harness for the trace decoders of native/recorder (decode.h): the pc stream and the
 * delta checkpoints, each into buffers of exactly the size the addon allocates, so that
 * AddressSanitizer sees any byte read or written outside them and UBSan any overflowing shift.
 *
 * Input: byte 0 picks the decoder (even: pcs, odd: checkpoint), then
 *   pcs:        u32 count (little-endian) | u8 flags (bit 0: last only) | the stream
 *   checkpoint: u16 key length | the key image (zeros past the input's end) | the delta
 *
 * Built with libFuzzer (clang -fsanitize=fuzzer) this is the whole harness; built with gcc it is
 * linked with fuzz-driver.c, a seeded mutation loop. scripts/fuzz-decoders.mjs builds and runs it.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include "../decode.h"

static uint32_t le32(const uint8_t *p) { return p[0] | p[1] << 8 | p[2] << 16 | (uint32_t)p[3] << 24; }

static void fuzz_pcs(const uint8_t *d, size_t n) {
  if (n < 5) return;
  uint32_t count = le32(d);
  int only = d[4] & 1;
  d += 5;
  n -= 5;
  /* The addon refuses counts the stream cannot hold before it allocates (decodePcs). */
  if (!pcs_count_fits(n, count)) return;
  size_t cells = only ? (count ? 1 : 0) : count;
  /* an exact-size copy of the stream, so a read past its end is caught */
  uint8_t *s = malloc(n ? n : 1);
  if (n) memcpy(s, d, n);
  uint64_t *pc = malloc(cells ? cells * 8 : 1);
  uint8_t *vc = malloc(cells ? cells : 1);
  pcs_decode(s, n, count, only, pc, vc);
  free(s);
  free(pc);
  free(vc);
}

static void fuzz_ckpt(const uint8_t *d, size_t n) {
  if (n < 2) return;
  size_t kn = d[0] | (size_t)d[1] << 8;
  d += 2;
  n -= 2;
  size_t have = kn < n ? kn : n;
  uint8_t *o = calloc(kn ? kn : 1, 1);
  memcpy(o, d, have);
  size_t dn = n - have;
  uint8_t *delta = malloc(dn ? dn : 1);
  if (dn) memcpy(delta, d + have, dn);
  ckpt_apply(o, kn, delta, dn);
  free(delta);
  free(o);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  if (data[0] & 1) fuzz_ckpt(data + 1, size - 1);
  else fuzz_pcs(data + 1, size - 1);
  return 0;
}
