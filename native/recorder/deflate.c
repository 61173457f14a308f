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
