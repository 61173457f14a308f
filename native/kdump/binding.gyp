{
  "targets": [
    {
      "target_name": "kdump",
      "sources": ["kdump.c"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wno-unused-parameter"],
      "libraries": ["-ldeflate", "-llzo2", "-lsnappy", "-lzstd"]
    }
  ]
}
