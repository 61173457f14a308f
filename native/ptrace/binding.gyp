{
  "targets": [
    {
      "target_name": "ptrace",
      "sources": ["ptrace.c"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wno-unused-parameter"]
    }
  ]
}
