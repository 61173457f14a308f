/*
 * The records the recording thread packs for the trace writer (little-endian: x86-64 and arm64
 * hosts), written in one place each and split into rows by sqlite-rows.c:
 *
 *   a page image (deflate.c, packPages): 32-bit page index into RAM, 16-bit length n, then n
 *     bytes of raw DEFLATE, or n = 0 and the page's 4096 bytes;
 *   a checkpoint (recorder.c, put_ckpt): 64-bit seq, 8-bit vCPU, 8-bit flags, 32-bit length,
 *     then that many bytes (the image, or its delta against the key).
 */
#ifndef DBG_RECORDER_RECORDS_H
#define DBG_RECORDER_RECORDS_H

#define PAGE_RECORD_HEAD 6
#define CKPT_RECORD_HEAD 14

#endif
