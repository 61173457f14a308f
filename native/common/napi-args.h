/*
 * Argument helpers shared by dbg's N-API addons (native/emu, native/recorder). Header-only:
 * each addon is its own shared object, and these are small enough to inline.
 */
#ifndef DBG_NAPI_ARGS_H
#define DBG_NAPI_ARGS_H

#include <node_api.h>
#include <stdbool.h>
#include <stdint.h>

/*
 * A 64-bit unsigned argument: a BigInt (addresses, uc_engine pointers from koffi.address()) or
 * a Number. Returns 0 when the value is neither, when a BigInt is negative or above 2^64 - 1, and
 * when a Number is not a whole number in [0, 2^64) (casting NaN, a negative or a larger double
 * to uint64_t is undefined behaviour in C).
 */
static inline int get_u64(napi_env env, napi_value v, uint64_t *out) {
  bool lossless;
  napi_valuetype t;
  napi_typeof(env, v, &t);
  if (t == napi_bigint) return napi_get_value_bigint_uint64(env, v, out, &lossless) == napi_ok && lossless;
  double d;
  if (napi_get_value_double(env, v, &d) != napi_ok) return 0;
  if (!(d >= 0 && d < 18446744073709551616.0) || d != (double)(uint64_t)d) return 0;
  *out = (uint64_t)d;
  return 1;
}

#endif
