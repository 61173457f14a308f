/*
 * A seeded, AFL-style mutation loop for compilers without libFuzzer (gcc): runs
 * LLVMFuzzerTestOneInput on mutations (bit flips, interesting bytes, 0xff runs, splices,
 * truncation, growth) of a small corpus of valid and once-fatal inputs for `seconds`, and keeps
 * mutants in memory only. Usage: decoders-fuzz [seconds] [seed]. ASan/UBSan abort the process
 * on the first fault; a death callback prints the input that caused it (hex), and the same seed
 * replays the same inputs.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <sanitizer/common_interface_defs.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static uint64_t rng;
static uint64_t rnd(void) {
  rng ^= rng << 13;
  rng ^= rng >> 7;
  rng ^= rng << 17;
  return rng;
}

#define MAXLEN 4096
typedef struct {
  uint8_t b[MAXLEN];
  size_t n;
} Input;

static Input corpus[256];
static size_t ncorpus;

static void add_hex(const char *hex) {
  Input *in = &corpus[ncorpus++];
  in->n = 0;
  for (const char *p = hex; p[0] && p[1]; p += 2) {
    unsigned v;
    sscanf(p, "%2x", &v);
    in->b[in->n++] = (uint8_t)v;
  }
}

static void mutate(Input *in) {
  int rounds = 1 + (int)(rnd() % 8);
  static const uint8_t interesting[] = {0x00, 0x01, 0x7f, 0x80, 0xff, 0x0f, 0xf0, 0x10, 0x11, 0x88};
  for (int r = 0; r < rounds; r++) {
    size_t at = in->n ? rnd() % in->n : 0;
    switch (rnd() % 9) {
    case 0: if (in->n) in->b[at] ^= (uint8_t)(1u << (rnd() % 8)); break;
    case 1: if (in->n) in->b[at] = interesting[rnd() % sizeof interesting]; break;
    case 2: { /* a run of 0xff (endless varints, huge runs) */
      size_t k = 1 + rnd() % 24;
      for (size_t i = 0; i < k && at + i < MAXLEN; i++) in->b[at + i] = 0xff;
      if (at + k > in->n) in->n = at + k < MAXLEN ? at + k : MAXLEN;
      break;
    }
    case 3: if (in->n > 1) in->n = 1 + rnd() % in->n; break;
    case 4: { /* grow with random bytes */
      size_t k = 1 + rnd() % 64;
      for (size_t i = 0; i < k && in->n < MAXLEN; i++) in->b[in->n++] = (uint8_t)rnd();
      break;
    }
    case 5: { /* splice from another corpus entry */
      Input *o = &corpus[rnd() % ncorpus];
      if (!o->n) break;
      size_t from = rnd() % o->n, k = 1 + rnd() % (o->n - from);
      if (at + k > MAXLEN) k = MAXLEN - at;
      memcpy(in->b + at, o->b + from, k);
      if (at + k > in->n) in->n = at + k;
      break;
    }
    case 7: { /* a varint of a value near a wrap-around: 2^64 - k, 2^63, 2^32 - k */
      static const uint64_t big[] = {0, 1ull << 63, 1ull << 32, 1ull << 31};
      uint64_t v = big[rnd() % 4] - (rnd() % 130);
      uint8_t enc[10];
      size_t k = 0;
      do {
        enc[k] = (uint8_t)(v & 0x7f) | (v > 0x7f ? 0x80 : 0);
        v >>= 7;
        k++;
      } while (v);
      if (at + k > MAXLEN) break;
      memcpy(in->b + at, enc, k);
      if (at + k > in->n) in->n = at + k;
      break;
    }
    case 6: if (in->n >= 5) { /* the count / key length fields */
      in->b[1 + rnd() % 4] = (uint8_t)rnd();
      break;
    }
    default: if (in->n) in->b[at] = (uint8_t)rnd(); break; /* case 8 */
    }
  }
}

static Input cur;

static void on_fault(void) {
  fprintf(stderr, "decoders-fuzz: the faulting input (%zu bytes): ", cur.n);
  for (size_t i = 0; i < cur.n; i++) fprintf(stderr, "%02x", cur.b[i]);
  fprintf(stderr, "\n");
}

int main(int argc, char **argv) {
  __sanitizer_set_death_callback(on_fault);
  double seconds = argc > 1 ? atof(argv[1]) : 30;
  rng = argc > 2 ? strtoull(argv[2], NULL, 0) : 0x9E3779B97F4A7C15ull;
  if (!rng) rng = 1;
  uint64_t seed = rng;
  /* pcs: sequential, predicted jumps, a far jump, a vCPU switch; the zigzag past 64 bits */
  add_hex("00" "08000000" "00" "3434001200310210");
  add_hex("00" "03000000" "01" "001ff1ffffffffffffff7f");
  add_hex("00" "20000000" "00" "00010043213421001f7f8f9f0102030405060708090a0b0c0d0e0f");
  /* checkpoints: a valid delta; the wrapping zero run that once corrupted the heap */
  add_hex("01" "1000" "00112233445566778899aabbccddeeff" "0202ffff0a01ff");
  add_hex("01" "4000" "ffffffffffffffffff0102aabb");
  add_hex("01" "0800" "0000000000000000" "8080808080808080808001");
  size_t seeds = ncorpus;
  for (size_t i = 0; i < seeds; i++) {
    cur = corpus[i];
    LLVMFuzzerTestOneInput(cur.b, cur.n);
  }
  struct timespec t0, t;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  uint64_t runs = 0;
  for (;;) {
    if ((runs & 1023) == 0) {
      clock_gettime(CLOCK_MONOTONIC, &t);
      if ((double)(t.tv_sec - t0.tv_sec) + (t.tv_nsec - t0.tv_nsec) / 1e9 >= seconds) break;
    }
    cur = corpus[rnd() % ncorpus];
    mutate(&cur);
    LLVMFuzzerTestOneInput(cur.b, cur.n);
    /* keep some mutants as parents: deeper inputs without coverage feedback */
    if (rnd() % 64 == 0) corpus[ncorpus < 256 ? ncorpus++ : seeds + rnd() % (256 - seeds)] = cur;
    runs++;
  }
  printf("decoders-fuzz: %llu inputs in %.0f s (seed 0x%llx), no fault\n", (unsigned long long)runs, seconds, (unsigned long long)seed);
  return 0;
}
