/*
 * A SQLite extension in the recorder's addon (entry point sqlite3_recorder_init, loaded by the
 * trace writer's connection: trace-db-writer.ts): two table-valued functions that split what the
 * recording thread packs into the rows of the trace, so that a chunk's page images and
 * checkpoints are stored by one INSERT ... SELECT each instead of a JavaScript loop binding three
 * or five values a row (a booting xv6 stores ~58,000 page images and ~19,000-37,000 checkpoints;
 * the writer's thread spent ~1.5 us a row binding them, on the core the guest's thread shares
 * when the machine is busy).
 *
 *   dbg_pages(packed, base) -> (page, data): packPages' page image records (records.h), page =
 *     base + index; a page packed whole is deflated here (libdeflate, the writer thread's
 *     compressor).
 *   dbg_ckpts(packed) -> (seq, vcpu, flags, data): the recorder's checkpoint records (records.h).
 *
 * A record that runs past the end, or a seq past SQLite's integers, fails the statement with a
 * message (the writer's transaction rolls back).
 */
#include <libdeflate.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include "records.h"
#include "sqlite3ext.h"
SQLITE_EXTENSION_INIT1

#define PAGE 4096u

struct libdeflate_compressor *dbg_compressor(void); /* deflate.c */

enum { PAGES, CKPTS };

typedef struct {
  sqlite3_vtab base;
  int kind;
} rows_vtab;

typedef struct {
  sqlite3_vtab_cursor base;
  uint8_t *packed; /* a copy of the argument: its value lives only as long as xFilter */
  size_t n, at, next;
  int64_t page_base;
  sqlite3_int64 row;
  int eof;
  /* the current record */
  int64_t page, seq;
  int vcpu, flags;
  const uint8_t *data;
  size_t len;
  uint8_t deflated[PAGE + 1024]; /* a raw page deflated (libdeflate's bound for 4 KiB is below this) */
} rows_cursor;

static int rows_connect(sqlite3 *db, void *aux, int argc, const char *const *argv, sqlite3_vtab **out, char **err) {
  int kind = (int)(intptr_t)aux;
  int rc = sqlite3_declare_vtab(db, kind == PAGES ? "CREATE TABLE x(page INTEGER, data BLOB, packed HIDDEN, base HIDDEN)"
                                                  : "CREATE TABLE x(seq INTEGER, vcpu INTEGER, flags INTEGER, data BLOB, packed HIDDEN)");
  if (rc != SQLITE_OK) return rc;
  rows_vtab *v = sqlite3_malloc(sizeof *v);
  if (!v) return SQLITE_NOMEM;
  memset(v, 0, sizeof *v);
  v->kind = kind;
  *out = &v->base;
  return SQLITE_OK;
}

static int rows_disconnect(sqlite3_vtab *v) {
  sqlite3_free(v);
  return SQLITE_OK;
}

/* The hidden arguments must be given (equality constraints): packed, and for dbg_pages base. */
static int rows_best_index(sqlite3_vtab *vt, sqlite3_index_info *info) {
  rows_vtab *v = (rows_vtab *)vt;
  int first = v->kind == PAGES ? 2 : 4, need = v->kind == PAGES ? 2 : 1, have = 0;
  for (int i = 0; i < info->nConstraint; i++) {
    const struct sqlite3_index_constraint *c = &info->aConstraint[i];
    int arg = c->iColumn - first;
    if (arg < 0 || arg >= need || c->op != SQLITE_INDEX_CONSTRAINT_EQ) continue;
    if (!c->usable) return SQLITE_CONSTRAINT;
    info->aConstraintUsage[i].argvIndex = arg + 1;
    info->aConstraintUsage[i].omit = 1;
    have |= 1 << arg;
  }
  if (have != (1 << need) - 1) {
    sqlite3_free(vt->zErrMsg);
    vt->zErrMsg = sqlite3_mprintf(v->kind == PAGES ? "dbg_pages(packed, base): both arguments are needed" : "dbg_ckpts(packed): the argument is needed");
    return SQLITE_ERROR;
  }
  info->estimatedCost = 1;
  return SQLITE_OK;
}

static int rows_open(sqlite3_vtab *v, sqlite3_vtab_cursor **out) {
  rows_cursor *c = sqlite3_malloc(sizeof *c);
  if (!c) return SQLITE_NOMEM;
  memset(c, 0, offsetof(rows_cursor, deflated));
  *out = &c->base;
  return SQLITE_OK;
}

static int rows_close(sqlite3_vtab_cursor *cur) {
  rows_cursor *c = (rows_cursor *)cur;
  sqlite3_free(c->packed);
  sqlite3_free(c);
  return SQLITE_OK;
}

static int fail(rows_cursor *c, const char *what) {
  sqlite3_vtab *v = c->base.pVtab;
  sqlite3_free(v->zErrMsg);
  v->zErrMsg = sqlite3_mprintf("%s at byte %llu of %llu", what, (unsigned long long)c->at, (unsigned long long)c->n);
  return SQLITE_ERROR;
}

/* The record at c->next, or the end. */
static int rows_read(rows_cursor *c) {
  c->at = c->next;
  if (c->at == c->n) {
    c->eof = 1;
    return SQLITE_OK;
  }
  size_t left = c->n - c->at;
  const uint8_t *p = c->packed + c->at;
  if (((rows_vtab *)c->base.pVtab)->kind == PAGES) {
    if (left < PAGE_RECORD_HEAD) return fail(c, "dbg_pages: a page image's header runs past the packed data");
    uint32_t index;
    memcpy(&index, p, 4);
    size_t n = (size_t)p[4] | (size_t)p[5] << 8;
    size_t body = n ? n : PAGE;
    if (left - PAGE_RECORD_HEAD < body) return fail(c, "dbg_pages: a page image runs past the packed data");
    c->page = c->page_base + (int64_t)index;
    if (n) {
      c->data = p + PAGE_RECORD_HEAD;
      c->len = n;
    } else {
      struct libdeflate_compressor *z = dbg_compressor();
      if (!z) return SQLITE_NOMEM;
      size_t m = libdeflate_deflate_compress(z, p + PAGE_RECORD_HEAD, PAGE, c->deflated, sizeof c->deflated);
      if (!m) return fail(c, "dbg_pages: a page did not deflate");
      c->data = c->deflated;
      c->len = m;
    }
    c->next = c->at + PAGE_RECORD_HEAD + body;
  } else {
    if (left < CKPT_RECORD_HEAD) return fail(c, "dbg_ckpts: a checkpoint's header runs past the packed data");
    uint64_t seq;
    uint32_t n;
    memcpy(&seq, p, 8);
    memcpy(&n, p + 10, 4);
    if (seq > (uint64_t)INT64_MAX) return fail(c, "dbg_ckpts: a checkpoint's seq is past SQLite's integers");
    if (left - CKPT_RECORD_HEAD < n) return fail(c, "dbg_ckpts: a checkpoint runs past the packed data");
    c->seq = (int64_t)seq;
    c->vcpu = p[8];
    c->flags = p[9];
    c->data = p + CKPT_RECORD_HEAD;
    c->len = n;
    c->next = c->at + CKPT_RECORD_HEAD + n;
  }
  c->row++;
  return SQLITE_OK;
}

static int rows_filter(sqlite3_vtab_cursor *cur, int idx, const char *idx_str, int argc, sqlite3_value **argv) {
  rows_cursor *c = (rows_cursor *)cur;
  sqlite3_free(c->packed);
  c->packed = NULL;
  c->n = c->at = c->next = 0;
  c->row = 0;
  c->eof = 0;
  if (argc < 1 || sqlite3_value_type(argv[0]) != SQLITE_BLOB) {
    c->eof = 1;
    return argc < 1 || sqlite3_value_type(argv[0]) == SQLITE_NULL ? SQLITE_OK : fail(c, "dbg rows: the packed data is not a blob");
  }
  const void *b = sqlite3_value_blob(argv[0]);
  c->n = (size_t)sqlite3_value_bytes(argv[0]);
  c->page_base = argc > 1 ? sqlite3_value_int64(argv[1]) : 0;
  if (c->n) {
    c->packed = sqlite3_malloc64(c->n);
    if (!c->packed) return SQLITE_NOMEM;
    memcpy(c->packed, b, c->n);
  }
  return rows_read(c);
}

static int rows_next(sqlite3_vtab_cursor *cur) { return rows_read((rows_cursor *)cur); }

static int rows_eof(sqlite3_vtab_cursor *cur) { return ((rows_cursor *)cur)->eof; }

static int rows_column(sqlite3_vtab_cursor *cur, sqlite3_context *ctx, int col) {
  rows_cursor *c = (rows_cursor *)cur;
  if (((rows_vtab *)cur->pVtab)->kind == PAGES) {
    if (col == 0) sqlite3_result_int64(ctx, c->page);
    else if (col == 1) sqlite3_result_blob(ctx, c->data, (int)c->len, SQLITE_TRANSIENT);
    else sqlite3_result_null(ctx);
  } else {
    if (col == 0) sqlite3_result_int64(ctx, c->seq);
    else if (col == 1) sqlite3_result_int(ctx, c->vcpu);
    else if (col == 2) sqlite3_result_int(ctx, c->flags);
    else if (col == 3) sqlite3_result_blob(ctx, c->data, (int)c->len, SQLITE_TRANSIENT);
    else sqlite3_result_null(ctx);
  }
  return SQLITE_OK;
}

static int rows_rowid(sqlite3_vtab_cursor *cur, sqlite3_int64 *out) {
  *out = ((rows_cursor *)cur)->row;
  return SQLITE_OK;
}

static sqlite3_module rows_module = {
    .iVersion = 0,
    .xCreate = 0, /* eponymous only */
    .xConnect = rows_connect,
    .xBestIndex = rows_best_index,
    .xDisconnect = rows_disconnect,
    .xOpen = rows_open,
    .xClose = rows_close,
    .xFilter = rows_filter,
    .xNext = rows_next,
    .xEof = rows_eof,
    .xColumn = rows_column,
    .xRowid = rows_rowid,
};

#ifdef _WIN32
__declspec(dllexport)
#endif
int sqlite3_recorder_init(sqlite3 *db, char **err, const sqlite3_api_routines *api) {
  SQLITE_EXTENSION_INIT2(api);
  int rc = sqlite3_create_module(db, "dbg_pages", &rows_module, (void *)(intptr_t)PAGES);
  if (rc == SQLITE_OK) rc = sqlite3_create_module(db, "dbg_ckpts", &rows_module, (void *)(intptr_t)CKPTS);
  return rc;
}
