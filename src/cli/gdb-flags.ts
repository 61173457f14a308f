/**
 * The --gdb-allow-* flags, the same on dbg open, live and replay (kept free of imports so that
 * `dbg open` does not load the GDB server to declare them).
 */
export function gdbPolicyFlags<F>(boolean: (o: { description: string }) => F): { 'gdb-allow-remote': F; 'gdb-allow-host-io': F } {
  return {
    'gdb-allow-remote': boolean({
      description: 'let --gdb listen on an address other than loopback: anyone who can reach it controls the target (no authentication)',
    }),
    'gdb-allow-host-io': boolean({
      description: 'let the gdb client load code and read or write files on this machine (monitor ::load, ::dump, ::symbols; vFile of any path)',
    }),
  };
}

/** A --gdb-allow-* flag without --gdb is a mistake worth one line (oclif's dependsOn says it in three). */
export function gdbPolicyProblem(flags: { gdb?: string; 'gdb-allow-remote'?: boolean; 'gdb-allow-host-io'?: boolean }): string | undefined {
  if (flags.gdb !== undefined) return undefined;
  const given = (['gdb-allow-remote', 'gdb-allow-host-io'] as const).find((f) => flags[f]);
  return given && `--${given} applies to the GDB server: give --gdb [HOST:]PORT too`;
}
