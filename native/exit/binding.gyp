{
  "targets": [
    {
      "target_name": "exit",
      "sources": ["exit.c"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wno-unused-parameter"]
    }
  ]
}
