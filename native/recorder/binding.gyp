{
  "targets": [
    {
      "target_name": "recorder",
      "sources": ["recorder.c", "pages.c", "deflate.c"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wno-unused-parameter"],
      "libraries": ["-lunicorn", "-ldeflate"]
    }
  ]
}
