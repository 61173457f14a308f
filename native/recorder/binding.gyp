{
  "targets": [
    {
      "target_name": "recorder",
      "sources": ["recorder.c", "pages.c", "deflate.c", "sqlite-rows.c"],
      "include_dirs": ["../../node_modules/better-sqlite3/deps/sqlite3"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wno-unused-parameter"],
      "libraries": ["-lunicorn", "-ldeflate"]
    }
  ]
}
