/**
 * A C++ process core with libstdc++'s debug info (issue 12): `::stack -a -v` (every thread's
 * frames with their arguments and locals from DWARF) against gdb's `thread apply all bt full` on
 * the same core, in the same run. Goal: dbg's wall time <= gdb's.
 *
 * The program: g++ -O0 -g, a 900 MiB heap (one vector) and 100,000 small objects, 13 threads
 * blocked in libstdc++ (condition_variable::wait, this_thread::sleep_for, future::wait) or in
 * read(2) under frames with std::string, std::vector and std::map locals and a template. It runs
 * against Debian's libstdc++6-12-dbg (the library built with full DWARF, in
 * /usr/lib/x86_64-linux-gnu/debug), so both debuggers read libstdc++'s DWARF, and libc6-dbg's
 * separate debug file for libc. The core is made once and cached under bench/.work/.
 *
 * Both sides are fresh processes timed from outside, interleaved, medians of 5.
 */

import { existsSync, statSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { BenchResult } from './bench-result.js';
import { coreFixture, measure, median, type Measured } from './process-core.js';

const SOURCE = String.raw`
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <unistd.h>
#include <vector>

namespace shop {
template <typename T> struct Ledger {
  std::string owner;
  std::vector<T> entries;
  std::map<std::string, T> totals;
};

struct Order {
  int id;
  double price;
  std::string item;
  unsigned urgent : 1, gift : 1, region : 6;
};

static std::mutex mu;
static std::condition_variable cv;
static std::atomic<int> blocked{0};
static int pipefd[2];

__attribute__((noinline)) void wait_for_stock(Ledger<long> &l, int depth) {
  std::vector<int> shelf(depth + 3, depth);
  std::string label = "shelf-" + std::to_string(depth);
  if (depth > 0) { wait_for_stock(l, depth - 1); return; }
  std::unique_lock<std::mutex> lock(mu);
  blocked++;
  cv.wait(lock, [] { return false; });
}

__attribute__((noinline)) void nap(const Order &o, int depth) {
  double total = o.price * depth;
  if (depth > 0) { nap(o, depth - 1); return; }
  blocked++;
  for (;;) std::this_thread::sleep_for(std::chrono::hours(1));
  (void)total;
}

__attribute__((noinline)) void read_pipe(std::map<std::string, int> &seen) {
  char buf[16];
  blocked++;
  while (read(pipefd[0], buf, sizeof buf) > 0) seen[std::string(buf, 1)]++;
}

__attribute__((noinline)) void touch(std::vector<char> &v) {
  for (size_t i = 0; i < v.size(); i += 4096) v[i] = (char)i;
  std::promise<int> never;
  std::future<int> f = never.get_future();
  blocked++;
  f.wait();
}

void worker(int n) {
  Ledger<long> l{"worker-" + std::to_string(n), {1, 2, 3, n}, {{"a", 1}, {"b", n}}};
  Order o{n, 9.5 + n, "widget", 1, 0, (unsigned)n};
  std::map<std::string, int> seen{{"x", n}};
  switch (n % 3) {
  case 0: wait_for_stock(l, 6 + n % 4); break;
  case 1: nap(o, 5 + n % 3); break;
  default: read_pipe(seen); break;
  }
}
} // namespace shop

int main() {
  using namespace shop;
  if (pipe(pipefd)) return 1;
  auto *heap = new std::vector<char>(900UL << 20);
  auto *orders = new std::vector<std::unique_ptr<Order>>;
  for (int i = 0; i < 100000; i++) orders->push_back(std::make_unique<Order>(Order{i, i * 0.5, "item-" + std::to_string(i), 0, 1, 3}));
  std::vector<std::thread> ts;
  for (int i = 0; i < 12; i++) ts.emplace_back(worker, i);
  ts.emplace_back(touch, std::ref(*heap));
  while (blocked < 13) usleep(1000);
  usleep(100000);
  std::printf("ready\n");
  std::fflush(stdout);
  for (auto &t : ts) t.join();
}
`;

/** Debian's libstdc++ built with full DWARF (package libstdc++6-12-dbg). */
const DEBUG_LIBSTDCXX = '/usr/lib/x86_64-linux-gnu/debug';

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, here.endsWith(join('dist', 'bench')) ? '../..' : '..');

/** `file:line` places a backtrace names, by the file's base name (gdb and dbg spell directories alike, not always the same way). */
function places(text: string): Set<string> {
  return new Set([...text.matchAll(/ at (?:\S*\/)?([^/\s]+):(\d+)/g)].map((m) => `${m[1]}:${m[2]}`));
}

export async function run(): Promise<BenchResult[]> {
  if (!existsSync(join(DEBUG_LIBSTDCXX, 'libstdc++.so.6'))) {
    process.stderr.write('bench: cpp-core: no libstdc++ with debug info (apt-get install libstdc++6-12-dbg; npm start installs it): skipped\n');
    return [];
  }
  const { exe, core } = await coreFixture({
    area: 'cpp-core',
    source: SOURCE,
    ext: 'cc',
    compile: ['g++', '-O0', '-g', '-pthread'],
    // One malloc arena besides main's: the core stays near 1 GiB (each thread arena would add 64 MiB).
    env: { LD_LIBRARY_PATH: DEBUG_LIBSTDCXX, MALLOC_ARENA_MAX: '2' },
  });
  const gdbArgs = ['-nx', '-batch', '-iex', 'set debuginfod enabled off', '-ex', 'thread apply all bt full', exe, core];
  const dbgArgs = [join(root, 'bin', 'dbg'), 'open', core, '--exe', exe, '-e', '::stack -a -v'];
  const runs = 5;
  await measure('gdb', gdbArgs); // the page cache warm for both
  await measure(process.execPath, dbgArgs);
  const gdb: Measured[] = [];
  const dbg: Measured[] = [];
  for (let i = 0; i < runs; i++) {
    gdb.push(await measure('gdb', gdbArgs));
    dbg.push(await measure(process.execPath, dbgArgs));
  }
  // dbg must say what gdb says: every file:line gdb puts on a frame, the frames of tail calls
  // included (libc's futex wait jumps to its worker).
  const missing = [...places(gdb[0]!.stdout)].filter((p) => !places(dbg[0]!.stdout).has(p));
  if (missing.length) throw new Error(`dbg's frames lack places gdb shows: ${missing.join(', ')}`);
  const locals = (t: string) => t.split('\n').filter((l) => /^ {8}\S+ = /.test(l)).length;
  const [gdbS, dbgS] = [median(gdb.map((m) => m.seconds)), median(dbg.map((m) => m.seconds))];
  const ratio = dbgS / gdbS;
  const gib = statSync(core).size / 2 ** 30;
  const rss = (ms: Measured[]) => (Math.max(...ms.map((m) => m.maxRssKiB)) / 1024).toFixed(0);
  return [
    {
      name: `C++ core (${gib.toFixed(2)} GiB, libstdc++ DWARF): ::stack -a -v vs gdb 'thread apply all bt full'`,
      value: ratio,
      unit: 'x',
      goal: '<= 1x',
      ok: ratio <= 1,
      baseline: `gdb ${gdbS.toFixed(3)} s, ${rss(gdb)} MiB, ${locals(gdb[0]!.stdout)} locals; dbg ${dbgS.toFixed(3)} s, ${rss(dbg)} MiB, ${locals(dbg[0]!.stdout)} locals (medians of ${runs})`,
    },
  ];
}
