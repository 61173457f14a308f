{
  "targets": [
    {
      "target_name": "dbg_emu",
      "sources": ["emu.c", "phys.c"],
      "libraries": ["-lunicorn", "-lcapstone", "-ldl"],
      "cflags": ["-O2", "-Wall", "-Wno-unused-parameter"]
    }
  ]
}
