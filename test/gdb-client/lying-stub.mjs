// A GDB stub that misbehaves in one chosen way, for dbg attach's error tests. It speaks just
// enough RSP to get past the handshake (an x86-64 description, one thread, registers, memory),
// then lies as MODE says. Prints its port on stdout; ends by itself after 60 s.
//
//   node lying-stub.mjs MODE
//   silent     accepts the connection and never sends a byte
//   ack-only   acknowledges every packet and never answers one
//   bad-sum    answers with a wrong checksum
//   close      closes the connection when the first packet comes
//   arm        describes an ARM CPU
//   short-g    answers g with 8 bytes
//   hang-m     never answers m
//   garbage-m  answers m with text that is not hex
//   refuse-z   refuses watchpoints with E22
//   refuse-G   refuses G (register writes) with E01
//   no-G       answers G empty (not supported)
//   auxv-odd   offers qXfer:auxv:read; its AT_ENTRY is 0x1001 (no PIE's e_entry plus whole pages)
//   auxv-bad   offers qXfer:auxv:read and answers it with text that is no qXfer reply
// In every mode P is answered empty (not supported): register writes come as G.
import { createServer } from 'node:net';

const mode = process.argv[2];
const frame = (p, sumDelta = 0) => {
  let s = 0;
  for (const c of Buffer.from(p, 'latin1')) s = (s + c) & 0xff;
  return `$${p}#${((s + sumDelta) & 0xff).toString(16).padStart(2, '0')}`;
};
const xml = (arch) =>
  `<?xml version="1.0"?><target><architecture>${arch}</architecture><feature name="org.gnu.gdb.i386.core">` +
  ['rax', 'rbx', 'rcx', 'rdx', 'rsi', 'rdi', 'rbp', 'rsp', 'r8', 'r9', 'r10', 'r11', 'r12', 'r13', 'r14', 'r15', 'rip'].map((n) => `<reg name="${n}" bitsize="64"/>`).join('') +
  '<reg name="eflags" bitsize="32"/></feature></target>';
const le = (v) => Buffer.from(BigInt.asUintN(64, v).toString(16).padStart(16, '0'), 'hex').reverse().toString('hex');
let regs = Array.from({ length: 17 }, (_, i) => le(i === 16 ? 0x401000n : i === 7 ? 0x7000n : BigInt(i))).join('') + '02000000';

function answer(p) {
  if (mode === 'hang-m' && p.startsWith('m')) return undefined;
  if (p.startsWith('qSupported')) return 'PacketSize=1000;qXfer:features:read+' + (mode.startsWith('auxv-') ? ';qXfer:auxv:read+' : '');
  if (p.startsWith('qXfer:auxv:read::')) {
    // (AT_ENTRY, 0x1001), (AT_NULL, 0) as 64-bit words; none of the bytes needs escaping.
    if (mode === 'auxv-bad') return 'zz';
    return 'l' + Buffer.from('09000000000000000110000000000000' + '00'.repeat(16), 'hex').toString('latin1');
  }
  if (p.startsWith('qXfer:features:read:target.xml:')) return 'l' + xml(mode === 'arm' ? 'arm' : 'i386:x86-64');
  if (p === '?') return 'S05';
  if (p === 'qfThreadInfo') return 'm1';
  if (p === 'qsThreadInfo') return 'l';
  if (p.startsWith('H')) return 'OK';
  if (p.startsWith('G')) {
    if (mode === 'refuse-G') return 'E01';
    if (mode === 'no-G') return '';
    regs = p.slice(1);
    return 'OK';
  }
  if (p === 'g') return mode === 'short-g' ? '0011223344556677' : regs;
  if (p.startsWith('m')) {
    if (mode === 'garbage-m') return 'zz not hex';
    const n = parseInt(p.split(',')[1], 16);
    return '5a'.repeat(n);
  }
  if (p.startsWith('Z2') || p.startsWith('Z3') || p.startsWith('Z4')) return mode === 'refuse-z' ? 'E22' : 'OK';
  if (p.startsWith('Z') || p.startsWith('z') || p === 'D') return 'OK';
  return '';
}

const server = createServer((sock) => {
  let buf = '';
  let last = '';
  sock.on('error', () => undefined);
  sock.on('data', (d) => {
    if (mode === 'silent') return;
    buf += d.toString('latin1');
    // A nak asks for the last reply again.
    if (/^[+]*-/.test(buf) && last) {
      buf = buf.replace(/^[+]*-/, '');
      sock.write(last);
    }
    for (let m; (m = /\$([^#]*)#[0-9a-fA-F]{2}/.exec(buf)); ) {
      buf = buf.slice(m.index + m[0].length);
      if (mode === 'close') return sock.destroy();
      sock.write('+');
      if (mode === 'ack-only') continue;
      const r = answer(m[1]);
      if (r !== undefined) sock.write((last = frame(r, mode === 'bad-sum' ? 1 : 0)));
    }
  });
});
server.listen(0, '127.0.0.1', () => console.log(server.address().port));
setTimeout(() => process.exit(0), 60_000).unref();
server.unref();
setTimeout(() => undefined, 60_000);
