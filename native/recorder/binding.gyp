{
  "targets": [
    {
      "target_name": "recorder",
      "sources": ["recorder.c", "pages.c"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wno-unused-parameter"],
      "libraries": ["-lunicorn"]
    }
  ]
}
