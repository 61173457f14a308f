/*
 * What a lazy recording knows of each 4 KiB page of RAM: the byte per page the recorder keeps
 * (src/store/emulator-recorder.ts, `seen`), which packPages (deflate.c) and dirtyRelease
 * (recorder.c) read and set.
 */
#ifndef DBG_RECORDER_SEEN_H
#define DBG_RECORDER_SEEN_H

enum {
  /* no image of the page in the trace: it reads as zero there */
  SEEN_NONE = 0,
  /* the trace holds an image of the page */
  SEEN_IMAGE = 1,
  /* listed as written while still zero, and left out: dirtyRelease lifts its protection */
  SEEN_ZERO = 2,
  /* its protection was lifted once: when it is listed zero again it stays protected */
  SEEN_RELEASED = 3,
};

#endif
