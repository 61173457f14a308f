/*
 * The page decompressors of kdump-compressed dumps, over the system's libraries (libdeflate for
 * zlib pages, liblzo2, libsnappy, libzstd), for src/targets/kdump/decompress.ts; decode() also
 * inflates compressed ELF sections (src/symbols/dwarf/dwarf-sections.ts). One call decodes one
 * page (or section):
 *
 *   decode(flag, src, srcLength, dst) -> undefined | "why it failed"
 *   readDecode(fd, offset, length, flag, dst) -> the same, for `length` bytes read with pread
 *                                                 at `offset` of `fd` (flag 0: stored as is)
 *
 *   flag       the page descriptor's compression bit: 0x1 zlib, 0x2 lzo, 0x4 snappy, 0x20 zstd
 *   src        a Buffer whose first srcLength bytes are the page's compressed bytes
 *   dst        a Buffer the decoded page must fill exactly (its length is the page size)
 *
 * A page that decodes to fewer or more bytes than dst holds, or does not decode, is a failure
 * described by the returned string (the caller names the page). Nothing is written outside dst,
 * and nothing is allocated per call: the decompressor and the zstd context live as long as the
 * addon's instance (one per Node environment, so worker threads do not share them).
 */
#include <node_api.h>
#include <libdeflate.h>
#include <lzo/lzo1x.h>
#include <snappy-c.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zstd.h>

enum { Z_ZLIB = 0x1, Z_LZO = 0x2, Z_SNAPPY = 0x4, Z_ZSTD = 0x20 };

#define MAX_PAGE 65536

struct state {
  uint8_t scratch[MAX_PAGE];
  struct libdeflate_decompressor *deflate;
  ZSTD_DCtx *zstd;
};

static void free_state(napi_env env, void *data, void *hint) {
  struct state *s = data;
  if (s->deflate) libdeflate_free_decompressor(s->deflate);
  if (s->zstd) ZSTD_freeDCtx(s->zstd);
  free(s);
}

/*
 * zlib pages through libdeflate, which decodes a whole buffer at twice zlib's speed (measured on
 * makedumpfile -c pages: 14 us against 28 us a page). Returns NULL on success, else a message in
 * `why` (at most `n` bytes).
 */
static const char *decode_zlib(struct state *s, const uint8_t *src, size_t len, uint8_t *dst, size_t size, char *why, size_t n) {
  if (!s->deflate && !(s->deflate = libdeflate_alloc_decompressor())) return "zlib: cannot allocate a decompressor (out of memory)";
  size_t out = 0;
  switch (libdeflate_zlib_decompress(s->deflate, src, len, dst, size, &out)) {
    case LIBDEFLATE_SUCCESS:
      if (out == size) return NULL;
      snprintf(why, n, "zlib: %zu bytes out, expected %zu", out, size);
      return why;
    case LIBDEFLATE_INSUFFICIENT_SPACE:
      snprintf(why, n, "zlib: the stream holds more than %zu bytes", size);
      return why;
    case LIBDEFLATE_SHORT_OUTPUT:
      return "zlib: the stream ends early";
    default:
      return "zlib: invalid data (a bad header, block, or checksum)";
  }
}

static const char *decode_lzo(const uint8_t *src, size_t len, uint8_t *dst, size_t size, char *why, size_t n) {
  lzo_uint out = size;
  int r = lzo1x_decompress_safe(src, len, dst, &out, NULL);
  if (r == LZO_E_OK && out == size) return NULL;
  if (r == LZO_E_OK) snprintf(why, n, "lzo: %lu bytes out, expected %zu", (unsigned long)out, size);
  else if (r == LZO_E_INPUT_OVERRUN) snprintf(why, n, "lzo: input ends inside an instruction");
  else if (r == LZO_E_OUTPUT_OVERRUN) snprintf(why, n, "lzo: output past the end of the page");
  else if (r == LZO_E_LOOKBEHIND_OVERRUN) snprintf(why, n, "lzo: back-reference before the start of the page");
  else if (r == LZO_E_INPUT_NOT_CONSUMED) snprintf(why, n, "lzo: bytes left after the end of the stream");
  else snprintf(why, n, "lzo: error %d", r);
  return why;
}

static const char *decode_snappy(const uint8_t *src, size_t len, uint8_t *dst, size_t size, char *why, size_t n) {
  size_t want;
  if (snappy_uncompressed_length((const char *)src, len, &want) != SNAPPY_OK) return "snappy: bad length header";
  if (want != size) {
    snprintf(why, n, "snappy: the block holds %zu bytes, expected %zu", want, size);
    return why;
  }
  size_t out = size;
  if (snappy_uncompress((const char *)src, len, (char *)dst, &out) != SNAPPY_OK) return "snappy: the block does not decode";
  if (out == size) return NULL;
  snprintf(why, n, "snappy: %zu bytes out, expected %zu", out, size);
  return why;
}

static const char *decode_zstd(struct state *s, const uint8_t *src, size_t len, uint8_t *dst, size_t size, char *why, size_t n) {
  if (!s->zstd && !(s->zstd = ZSTD_createDCtx())) return "zstd: cannot create a context (out of memory)";
  size_t r = ZSTD_decompressDCtx(s->zstd, dst, size, src, len);
  if (ZSTD_isError(r)) {
    snprintf(why, n, "zstd: %s", ZSTD_getErrorName(r));
    return why;
  }
  if (r == size) return NULL;
  snprintf(why, n, "zstd: %zu bytes out, expected %zu", r, size);
  return why;
}

static napi_value throw_type(napi_env env, const char *msg) {
  napi_throw_type_error(env, NULL, msg);
  return NULL;
}

/* Decodes `len` bytes at `src` into dst; NULL, or why not (in buf). flag 0 is a stored page. */
static const char *decode_any(struct state *s, uint32_t flag, const uint8_t *src, size_t len, uint8_t *dst, size_t size, char *buf, size_t n) {
  switch (flag) {
    case 0:
      if (len != size) {
        snprintf(buf, n, "a stored page of %zu bytes, expected %zu", len, size);
        return buf;
      }
      memcpy(dst, src, size);
      return NULL;
    case Z_ZLIB: return decode_zlib(s, src, len, dst, size, buf, n);
    case Z_LZO: return decode_lzo(src, len, dst, size, buf, n);
    case Z_SNAPPY: return decode_snappy(src, len, dst, size, buf, n);
    case Z_ZSTD: return decode_zstd(s, src, len, dst, size, buf, n);
    default:
      snprintf(buf, n, "flags 0x%x name no compression", flag);
      return buf;
  }
}

static napi_value result(napi_env env, const char *why) {
  if (!why) return NULL;
  napi_value msg;
  napi_create_string_utf8(env, why, NAPI_AUTO_LENGTH, &msg);
  return msg;
}

/* The call's `n` arguments into argv, and the instance's state; NULL (a TypeError thrown) for another count. */
static struct state *call_args(napi_env env, napi_callback_info info, size_t n, napi_value *argv, const char *usage) {
  size_t argc = n;
  struct state *s;
  napi_get_cb_info(env, info, &argc, argv, NULL, (void **)&s);
  if (argc == n) return s;
  napi_throw_type_error(env, NULL, usage);
  return NULL;
}

static napi_value decode(napi_env env, napi_callback_info info) {
  napi_value argv[4];
  struct state *s = call_args(env, info, 4, argv, "decode(flag, src, srcLength, dst)");
  if (!s) return NULL;
  uint32_t flag, len;
  void *src, *dst;
  size_t srcCap, size;
  if (napi_get_value_uint32(env, argv[0], &flag) != napi_ok) return throw_type(env, "decode: flag is not a number");
  if (napi_get_buffer_info(env, argv[1], &src, &srcCap) != napi_ok) return throw_type(env, "decode: src is not a Buffer");
  if (napi_get_value_uint32(env, argv[2], &len) != napi_ok || len > srcCap) return throw_type(env, "decode: srcLength is not within src");
  if (napi_get_buffer_info(env, argv[3], &dst, &size) != napi_ok) return throw_type(env, "decode: dst is not a Buffer");
  char buf[160];
  return result(env, decode_any(s, flag, src, len, dst, size, buf, sizeof buf));
}

/* One call per cold page instead of two (a pread from JS costs more than the syscall). */
static napi_value read_decode(napi_env env, napi_callback_info info) {
  napi_value argv[5];
  struct state *s = call_args(env, info, 5, argv, "readDecode(fd, offset, length, flag, dst)");
  if (!s) return NULL;
  int32_t fd;
  double offset;
  uint32_t len, flag;
  void *dst;
  size_t size;
  if (napi_get_value_int32(env, argv[0], &fd) != napi_ok) return throw_type(env, "readDecode: fd is not a number");
  if (napi_get_value_double(env, argv[1], &offset) != napi_ok || !(offset >= 0 && offset < 9007199254740992.0)) return throw_type(env, "readDecode: offset is not a file offset");
  if (napi_get_value_uint32(env, argv[2], &len) != napi_ok || len > MAX_PAGE) return throw_type(env, "readDecode: length is not 0 to 65536");
  if (napi_get_value_uint32(env, argv[3], &flag) != napi_ok) return throw_type(env, "readDecode: flag is not a number");
  if (napi_get_buffer_info(env, argv[4], &dst, &size) != napi_ok) return throw_type(env, "readDecode: dst is not a Buffer");
  char buf[160];
  size_t done = 0;
  while (done < len) {
    ssize_t r = pread(fd, s->scratch + done, len - done, (off_t)offset + (off_t)done);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) {
      snprintf(buf, sizeof buf, "read: %s at file offset 0x%llx", r < 0 ? strerror(errno) : "the file ends", (unsigned long long)offset + done);
      return result(env, buf);
    }
    done += (size_t)r;
  }
  return result(env, decode_any(s, flag, s->scratch, len, dst, size, buf, sizeof buf));
}

/* The libraries' versions, for the bench and the tests: "libdeflate 1.14, lzo 2.10, ...". */
static napi_value versions(napi_env env, napi_callback_info info) {
  char buf[200];
  snprintf(buf, sizeof buf, "libdeflate %s, lzo %s, snappy, zstd %s", LIBDEFLATE_VERSION_STRING, lzo_version_string(), ZSTD_versionString());
  napi_value v;
  napi_create_string_utf8(env, buf, NAPI_AUTO_LENGTH, &v);
  return v;
}

static napi_value init(napi_env env, napi_value exports) {
  if (lzo_init() != LZO_E_OK) {
    napi_throw_error(env, NULL, "liblzo2: lzo_init failed (a library built for another ABI)");
    return NULL;
  }
  struct state *s = calloc(1, sizeof *s);
  if (!s) {
    napi_throw_error(env, NULL, "out of memory");
    return NULL;
  }
  napi_set_instance_data(env, s, free_state, NULL);
  napi_property_descriptor props[] = {
    {"decode", NULL, decode, NULL, NULL, NULL, napi_default, s},
    {"readDecode", NULL, read_decode, NULL, NULL, NULL, napi_default, s},
    {"versions", NULL, versions, NULL, NULL, NULL, napi_default, NULL},
  };
  napi_define_properties(env, exports, sizeof props / sizeof props[0], props);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, init)
