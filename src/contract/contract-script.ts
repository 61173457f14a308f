/**
 * The body of `dbg contract HOST:PORT -e '…'`: contract commands sent one at a time through a
 * ContractClient, each reply printed as the server wrote it. C=1; and B=1; wait for the guest's
 * STOP= before the next command (as MDB's :c does), so a script reads like a session. The first
 * ERR= stops the script: its reason is printed as `dbg: …` and the status is 1.
 */

import { DbgError } from '../common/errors.js';
import { ContractClient } from './contract-client.js';
import { CommandParser } from './grammar.js';

export interface ContractScriptOptions {
  readonly host: string;
  readonly port: number;
  /** Each reply's and STOP='s wait; undefined: replies 10 s, stops unbounded (Ctrl-C sends C=0;). */
  readonly timeoutMs?: number;
  readonly print: (line: string) => void;
}

/** Run `script` (commands ended by ";"); throws DbgError for a failure to connect, an ERR=, a timeout. */
export async function runContractScript(script: string, o: ContractScriptOptions): Promise<void> {
  const client = await ContractClient.open(o.host, o.port, { timeoutMs: o.timeoutMs });
  client.onReply.push((line) => {
    if (!line.startsWith('ERR=')) o.print(line);
  });
  const onSigint = (): void => client.sendRaw('C=0;');
  process.on('SIGINT', onSigint);
  let detached = false;
  try {
    for (const c of new CommandParser().feed(Buffer.from(script, 'latin1'))) {
      if (c.kind === 'bad') throw new DbgError('bad-input', c.why);
      const v = c.value.toLowerCase();
      if ((c.key === 'C' && (v === '1' || v === 'true')) || (c.key === 'B' && (v === '1' || v === 'true'))) {
        await client.command(`${c.text};`);
        await client.waitStop(o.timeoutMs ?? Infinity);
      } else {
        await client.command(`${c.text};`);
        if (c.key === 'D') {
          detached = true;
          break;
        }
      }
    }
  } finally {
    process.off('SIGINT', onSigint);
    if (!detached) client.close();
  }
}
