/**
 * A UDP load generator for STUN Binding: `sockets` sockets, each keeping `window` requests
 * outstanding (a response or a timeout frees a slot, which sends the next request). Requests are
 * the 20-byte header only (no attributes); the transaction ID's last 4 bytes carry a sequence
 * number so a response is matched to its slot without a map. The same generator measures every
 * server, so its own cost is the same on both sides of a ratio.
 */
import { createSocket, type Socket } from 'node:dgram';
import { CLASS_REQUEST, encodeMessage, METHOD_BINDING, readBindingResponse } from '@weft/relay';

export interface LoadOptions {
  host: string;
  port: number;
  sockets: number;
  window: number;
  durationMs: number;
  /** A request unanswered this long counts as lost and its slot sends a new one. */
  timeoutMs: number;
}

export interface LoadResult {
  sent: number;
  received: number;
  lost: number;
  seconds: number;
  responsesPerSecond: number;
  /** The first response on each socket decoded in full and carried that socket's own address. */
  verified: boolean;
  /** CPU seconds this generator used (user + system): near `seconds` means it was the bottleneck. */
  generatorCpuSeconds: number;
}

const SEQ_AT = 16; // transaction ID bytes 8..19; the sequence number sits in the last four

export async function runLoad(o: LoadOptions): Promise<LoadResult> {
  const socks: Socket[] = [];
  for (let i = 0; i < o.sockets; i++) {
    const s = createSocket('udp4');
    await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
    try {
      s.setRecvBufferSize(4 << 20);
    } catch {
      // capped by the kernel
    }
    socks.push(s);
  }
  let sent = 0;
  let received = 0;
  let lost = 0;
  let verified = true;
  let running = true;
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();

  for (const s of socks) {
    const template = encodeMessage({ method: METHOD_BINDING, cls: CLASS_REQUEST, transactionId: Buffer.alloc(12), attributes: [] });
    const seqs = new Uint32Array(o.window);
    const sentAt = new Float64Array(o.window);
    let checked = false;
    const send = (slot: number, seq: number) => {
      const req = Buffer.from(template);
      req.writeUInt32BE(seq, SEQ_AT);
      seqs[slot] = seq;
      sentAt[slot] = performance.now();
      sent++;
      s.send(req, o.port, o.host);
    };
    s.on('message', (msg) => {
      if (msg.length < 20 || msg.readUInt16BE(0) !== 0x0101) return;
      const seq = msg.readUInt32BE(SEQ_AT);
      const slot = seq % o.window;
      if (seqs[slot] !== seq) return; // late, after a timeout
      if (!checked) {
        checked = true;
        const mapped = readBindingResponse(msg, msg.subarray(8, 20));
        if (mapped?.port !== s.address().port || mapped.address !== '127.0.0.1') verified = false;
      }
      received++;
      if (running) send(slot, seq + o.window);
    });
    const sweep = setInterval(() => {
      const now = performance.now();
      for (let slot = 0; slot < o.window; slot++) {
        if (running && now - sentAt[slot]! > o.timeoutMs) {
          lost++;
          send(slot, seqs[slot]! + o.window);
        }
      }
    }, Math.max(10, o.timeoutMs / 4));
    s.once('close', () => clearInterval(sweep));
    for (let slot = 0; slot < o.window; slot++) send(slot, slot);
  }

  await new Promise((r) => setTimeout(r, o.durationMs));
  running = false;
  const seconds = (performance.now() - t0) / 1000;
  const got = received;
  const cpu = process.cpuUsage(cpu0);
  await new Promise((r) => setTimeout(r, 50));
  for (const s of socks) s.close();
  return { sent, received: got, lost, seconds, responsesPerSecond: got / seconds, verified, generatorCpuSeconds: (cpu.user + cpu.system) / 1e6 };
}
