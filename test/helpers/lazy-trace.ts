/**
 * A lazy-rows trace (trace-reader.ts, TraceReader.lazyRows) made from an eager one: the same file
 * with each chunk's written pages as they were at its end (computed from its rows) and every
 * input's chunk, and its memory rows gone. What the reader then answers by re-executing chunks
 * must equal what it answers from the recorded rows: a differential test of the lazy side that
 * does not depend on how the recorder finds written pages.
 */
import Database from 'better-sqlite3';
import { copyFileSync } from 'node:fs';
import { deflateRawSync } from 'node:zlib';
import { TraceReader } from '../../src/store/trace-reader.js';
import { storedChunks } from '../../src/targets/replay/chunk-drive.js';

export function toLazyRows(eager: string, lazy: string): void {
  const r = TraceReader.open(eager);
  copyFileSync(eager, lazy);
  const db = new Database(lazy);
  try {
    const chunks = storedChunks(r);
    const ids = db.prepare('SELECT id FROM input ORDER BY seq, id').pluck().all() as number[];
    db.exec('CREATE TABLE IF NOT EXISTS page (chunk INTEGER NOT NULL, page INTEGER NOT NULL, data BLOB NOT NULL)');
    db.exec('CREATE UNIQUE INDEX IF NOT EXISTS page_by_page ON page (page, chunk)');
    db.exec('CREATE INDEX IF NOT EXISTS page_by_chunk ON page (chunk, page)');
    if (!(db.prepare('PRAGMA table_info(input)').all() as { name: string }[]).some((c) => c.name === 'chunk')) db.exec('ALTER TABLE input ADD COLUMN chunk INTEGER');
    // a line at the end of a chunk: its last row up to there, else as recording began
    const finalOf = db
      .prepare('SELECT substr(m.data, 65, 64) FROM mem_mask k JOIN mem m ON m.line = k.line AND m.chunk = k.chunk AND m.part = k.part WHERE k.line = ? AND k.chunk <= ? ORDER BY k.chunk DESC, k.part DESC LIMIT 1')
      .pluck();
    const ins = db.prepare('INSERT INTO page (chunk, page, data) VALUES (?, ?, ?)');
    const setChunk = db.prepare('UPDATE input SET chunk = ? WHERE id = ?');
    db.transaction(() => {
      ids.forEach((id, i) => setChunk.run(chunks[i], id));
      for (let c = 0; c < r.chunkCount; c++) {
        const pages = [...new Set(r.linesWritten(c, c).map((l) => Math.floor(l / 64)))];
        for (const page of pages) {
          const img = Buffer.alloc(4096);
          for (let i = 0; i < 64; i++) {
            const line = page * 64 + i;
            ((finalOf.get(line, c) as Buffer | undefined) ?? r.initialLine(line)).copy(img, i * 64);
          }
          ins.run(c, page, deflateRawSync(img));
        }
      }
      db.exec('DELETE FROM mem; DELETE FROM mem_mask');
      db.prepare("INSERT OR REPLACE INTO meta (key, value) VALUES ('memory_rows', 'lazy')").run();
    })();
  } finally {
    db.close();
    r.close();
  }
}
