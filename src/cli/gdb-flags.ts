/**
 * The --gdb-allow-* flags, the same on dbg open, live and replay (kept free of imports so that
 * `dbg open` does not load the GDB server to declare them).
 */
import type { Flags as OclifFlags } from '@oclif/core';

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

/** --contract and --contract-allow-remote, the same on dbg open, live and replay (oclif's Flags passed in). */
export function contractFlags(flags: typeof OclifFlags) {
  return {
    contract: flags.string({
      description: 'also serve the plain-text control contract (BP=sym; B=1; C=1; C=0; D=1; V=?;) on [HOST:]PORT (127.0.0.1 unless a host is given); one controller at a time with --gdb',
      helpValue: '[HOST:]PORT',
    }),
    'contract-allow-remote': flags.boolean({
      description: 'let --contract listen on an address other than loopback: anyone who can reach it controls the target (no authentication)',
    }),
  };
}

/** --contract-allow-remote without --contract. */
export function contractPolicyProblem(flags: { contract?: string; 'contract-allow-remote'?: boolean }): string | undefined {
  return flags.contract === undefined && flags['contract-allow-remote'] ? '--contract-allow-remote applies to the control contract: give --contract [HOST:]PORT too' : undefined;
}
