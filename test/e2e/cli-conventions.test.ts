/**
 * oclif's conventions on `bin/dbg`: help everywhere, a version, shell completion, a suggestion for a
 * mistyped command — each as a user runs it (a child process, no terminal).
 */

import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { repoRoot } from '../helpers/repo.js';
import { turnEventLoop } from '../helpers/event-loop.js';

const dbg = join(repoRoot, 'bin', 'dbg');

function run(args: string[], env: Record<string, string> = {}) {
  const r = spawnSync(process.execPath, [dbg, ...args], { encoding: 'utf8', timeout: 60_000, env: { ...process.env, DBG_HISTORY: '/dev/null', ...env } });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

describe('help, version, completion', () => {
  it('dbg help, dbg -h and dbg --help list the commands', () => {
    for (const args of [['help'], ['-h'], ['--help']]) {
      const r = run(args);
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout).toMatch(/^COMMANDS$/m);
      for (const c of ['open', 'live', 'replay', 'query', 'version', 'autocomplete']) expect(r.stdout).toMatch(new RegExp(`^  ${c}( |$)`, 'm'));
    }
  });

  it('-h and help show each command\'s usage', async () => {
    for (const c of ['open', 'live', 'replay', 'query']) {
      for (const args of [[c, '-h'], [c, '--help'], ['help', c]]) {
        await turnEventLoop(); // twelve dbg processes one after the other (event-loop.ts)
        const r = run(args);
        expect(r.code, args.join(' ')).toBe(0);
        expect(r.stdout).toContain(`$ dbg ${c} `);
        expect(r.stderr).toBe('');
      }
    }
  });

  it('dbg version and dbg --version print the version', () => {
    const { version } = JSON.parse(readFileSync(join(repoRoot, 'package.json'), 'utf8')) as { version: string };
    for (const args of [['version'], ['--version']]) {
      const r = run(args);
      expect(r.code).toBe(0);
      expect(r.stdout).toMatch(new RegExp(`^dbg/${version.replace(/\./g, '\\.')} linux-x64 node-v`));
    }
  });

  it('dbg autocomplete script bash and zsh print completion scripts that name the commands', () => {
    const cache = mkdtempSync(join(tmpdir(), 'dbg-autocomplete-'));
    try {
      const env = { XDG_CACHE_HOME: cache, HOME: cache };
      const bash = run(['autocomplete', 'script', 'bash'], env);
      expect(bash.code).toBe(0);
      expect(bash.stdout).toContain('DBG_AC_BASH_SETUP_PATH');
      const zsh = run(['autocomplete', 'script', 'zsh'], env);
      expect(zsh.code).toBe(0);
      expect(zsh.stdout).toContain('DBG_AC_ZSH_SETUP_PATH');
      expect(run(['autocomplete', 'bash'], env).code).toBe(0);
      const functions = join(cache, 'dbg', 'autocomplete', 'functions');
      const bashFn = readFileSync(join(functions, 'bash', 'dbg.bash'), 'utf8');
      const zshFn = readFileSync(join(functions, 'zsh', '_dbg'), 'utf8');
      for (const c of ['open', 'live', 'replay', 'query']) {
        expect(bashFn).toContain(c);
        expect(zshFn).toContain(c);
      }
      expect(zshFn).toContain('--symbols');
    } finally {
      rmSync(cache, { recursive: true, force: true });
    }
  });
});

describe("errors of oclif's own commands", () => {
  it('are one line dbg: … too', () => {
    const cases: [string[], string][] = [
      [['help', 'opne'], 'dbg: command opne not found (see dbg help --help)\n'],
      [['autocomplete', 'fish'], 'dbg: expected fish to be one of: zsh, bash, powershell (see dbg autocomplete --help)\n'],
      [['version', '--bogus'], 'dbg: unknown flag --bogus (see dbg version --help)\n'],
    ];
    for (const [args, message] of cases) {
      const r = run(args);
      expect(r.stderr, args.join(' ')).toBe(message);
      expect(r.stdout).toBe('');
      expect(r.code).toBe(2);
    }
  });
});

describe('a mistyped command', () => {
  it('names the closest command in one line and exits 127', () => {
    const r = run(['opne', 'core']);
    expect(r.code).toBe(127);
    expect(r.stdout).toBe('');
    expect(r.stderr).toBe('dbg: "opne" is not a dbg command; did you mean "dbg open"? (dbg help lists the commands)\n');
    expect(run(['replya']).stderr).toBe('dbg: "replya" is not a dbg command; did you mean "dbg replay"? (dbg help lists the commands)\n');
  });

  it('suggests nothing when nothing is close', () => {
    const r = run(['frobnicate']);
    expect(r.code).toBe(127);
    expect(r.stderr).toBe('dbg: "frobnicate" is not a dbg command (dbg help lists the commands)\n');
  });
});
