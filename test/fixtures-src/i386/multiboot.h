/* A multiboot v1 header (magic, flags: memory information, checksum), for the 32-bit test guests. */
#define MB_MAGIC 0x1badb002
#define MB_FLAGS 0x00000002

.section .multiboot, "a"
.align 4
.long MB_MAGIC, MB_FLAGS, -(MB_MAGIC + MB_FLAGS)
