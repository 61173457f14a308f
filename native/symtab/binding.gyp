{
  "targets": [
    {
      "target_name": "symtab",
      "sources": ["symtab.c"],
      "cflags": ["-O2", "-std=gnu11", "-Wall", "-Wno-unused-parameter"]
    }
  ]
}
