/**
 * `-e CMDS`, repeatable on every command: the scripts run in the order given, as one script, so the
 * first failure stops the rest (`-e a -e b` runs a, then b).
 * undefined when no -e was given (the REPL starts).
 */
export function scriptOf(execute: readonly string[] | string | undefined): string | undefined {
  if (execute === undefined) return undefined;
  return typeof execute === 'string' ? execute : execute.join('\n');
}
