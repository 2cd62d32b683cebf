/**
 * A client WebSocket that reads the server's frames as they arrive and keeps only what its owner
 * wants: for each message it decodes the head (the first HEAD_BYTES of the payload, over as many
 * fragments as that takes) and asks `keep(head)`; a kept message is collected whole, any other is
 * counted and its bytes dropped as they pass. `ws` collects every fragment of a message before it
 * emits it, so a fleet of 10,000 agents each being sent a 3 MB netmap held ~31 GB in flight; this
 * holds a few bytes per agent. The end of a message (the FIN bit of its last fragment) is what
 * says "netmap received". Used by SimAgent when it does not parse (benchmarks).
 *
 * A binary message is a compressed netmap or resume (raw deflate, NETMAP_ENCODING_HEADER): its
 * head is the first HEAD_BYTES it inflates to, read from as few of its first bytes as that takes
 * (the rest is counted, never inflated); a kept one is collected as it came, compressed.
 *
 * Frames (RFC 6455 5.2): byte 0 = FIN (0x80) | opcode; byte 1 = MASK (0x80) | 7-bit length,
 * 126 = a 16-bit length follows, 127 = a 64-bit length follows; then the 4-byte mask key (client
 * frames only: the server's are never masked); then the payload.
 */
import { randomBytes } from 'node:crypto';
import { EventEmitter } from 'node:events';
import { connect as tcpConnect, type Socket } from 'node:net';
import { connect as tlsConnect } from 'node:tls';
import { constants, inflateRawSync } from 'node:zlib';

/** Bytes of each message decoded for `keep` (enough for `{"type":"netmap","seq":N,"revision":"<32 hex>"`). */
export const HEAD_BYTES = 96;

const Op = { continuation: 0x0, text: 0x1, binary: 0x2, close: 0x8, ping: 0x9, pong: 0xa } as const;

/** Compressed bytes read for a binary message's head at most (96 bytes of JSON take far fewer). */
const HEAD_DEFLATED_BYTES = 4096;

/** One message: its head, its size in bytes (on the wire), its payload when kept, and whether it is binary (raw deflate). */
export interface CountedMessage { head: string; bytes: number; data: Buffer | null; binary: boolean }

export interface CountingSocketOptions {
  headers: Record<string, string>;
  /** Called once per message with its head; true = collect the whole payload. */
  keep: (head: string) => boolean;
  /** PEM to verify a wss:// server against. */
  ca?: string;
}

/** What the server answered instead of 101 (its body, as text). */
export class UpgradeRefused extends Error {
  constructor(readonly status: number, readonly contentType: string | undefined, readonly body: string) {
    super(`upgrade refused: HTTP ${status}`);
  }
}

/**
 * Events: 'message' (CountedMessage), 'close' (code, reason), 'pong'. `open()` resolves after
 * the 101 with the socket paused: attach listeners, then `start()`. A refused upgrade rejects
 * with UpgradeRefused.
 */
export class CountingSocket extends EventEmitter {
  private buf: Buffer = Buffer.alloc(0);
  /** The frame being read: payload bytes still to come, and whether it ends its message. */
  private left = 0;
  private fin = false;
  private opcode = 0;
  /** A control frame's payload (collected whole; at most 125 bytes). */
  private control: Buffer[] = [];
  /** The message being read. */
  private msg: { binary: boolean; head: Buffer[]; headLen: number; bytes: number; kept: Buffer[] | null; decided: boolean } | null = null;
  private closeSent = false;
  /** What came after the 101 in its read, until start(). */
  private early: Buffer = Buffer.alloc(0);
  private closedWith: { code: number; reason: string } | null = null;

  private constructor(private readonly tcp: Socket, private readonly keep: (head: string) => boolean) {
    super();
  }

  /**
   * Starts reading: call once the 'message' and 'close' listeners are on. Until then the socket
   * is paused and whatever came with the 101 is held, so no message is emitted to nobody.
   */
  start(): void {
    const early = this.early;
    this.early = Buffer.alloc(0);
    if (early.length) this.read(early);
    this.tcp.resume();
  }

  static open(url: string, opts: CountingSocketOptions): Promise<CountingSocket> {
    const u = new URL(url);
    const secure = u.protocol === 'wss:' || u.protocol === 'https:';
    const port = Number(u.port || (secure ? 443 : 80));
    const tcp = secure
      ? tlsConnect({ host: u.hostname, port, servername: u.hostname, ...(opts.ca ? { ca: opts.ca } : {}) })
      : tcpConnect({ host: u.hostname, port });
    const ws = new CountingSocket(tcp, opts.keep);
    return new Promise((resolve, reject) => {
      let head = Buffer.alloc(0);
      tcp.once('error', reject);
      tcp.once(secure ? 'secureConnect' : 'connect', () => {
        const headers = { Host: u.host, Connection: 'Upgrade', Upgrade: 'websocket', 'Sec-WebSocket-Version': '13', 'Sec-WebSocket-Key': randomBytes(16).toString('base64'), ...opts.headers };
        tcp.write(`GET ${u.pathname}${u.search} HTTP/1.1\r\n${Object.entries(headers).map(([k, v]) => `${k}: ${v}\r\n`).join('')}\r\n`);
      });
      const onHandshake = (chunk: Buffer) => {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        tcp.off('data', onHandshake);
        const lines = head.subarray(0, end).toString().split('\r\n');
        const status = Number(lines[0]!.split(' ')[1]);
        const rest = head.subarray(end + 4);
        if (status !== 101) return refused(status, lines, rest);
        tcp.off('error', reject);
        tcp.on('error', () => {}); // 'close' follows and says so
        tcp.on('close', () => ws.ended());
        // Frames may have come in the same read as the 101 (a small netmap often does): held, with
        // the socket paused, until the caller has its listeners on and calls start().
        tcp.pause();
        ws.early = rest;
        tcp.on('data', (c: Buffer) => ws.read(c));
        resolve(ws);
      };
      const refused = (status: number, lines: string[], body: Buffer) => {
        const contentType = lines.find((l) => /^content-type:/i.test(l))?.split(':')[1]?.trim();
        const chunks = [body];
        tcp.on('data', (c: Buffer) => chunks.push(c));
        // The server closes after a refusal; a body that says its length is done sooner.
        const length = Number(lines.find((l) => /^content-length:/i.test(l))?.split(':')[1] ?? NaN);
        const done = () => {
          tcp.destroy();
          reject(new UpgradeRefused(status, contentType, Buffer.concat(chunks).toString()));
        };
        if (body.length >= length) return done();
        tcp.on('data', () => Buffer.concat(chunks).length >= length && done());
        tcp.once('close', done);
      };
      tcp.on('data', onHandshake);
    });
  }

  /** Bytes queued on this side, not yet taken by the kernel. */
  get bufferedAmount(): number {
    return this.tcp.writableLength;
  }

  send(data: string | Buffer): void {
    this.frame(Op.text, typeof data === 'string' ? Buffer.from(data) : data);
  }

  /** Starts the closing handshake; the socket ends when the server answers (or after 2 s). */
  close(code = 1000, reason = ''): void {
    if (this.closeSent || this.tcp.destroyed) return;
    this.closeSent = true;
    const payload = Buffer.alloc(2 + Buffer.byteLength(reason));
    payload.writeUInt16BE(code, 0);
    payload.write(reason, 2);
    this.frame(Op.close, payload);
    setTimeout(() => this.tcp.destroy(), 2000).unref();
  }

  terminate(): void {
    this.tcp.destroy();
  }

  /** Masked, as RFC 6455 requires of clients; one frame (FIN set). */
  private frame(opcode: number, payload: Buffer): void {
    if (this.tcp.destroyed) return;
    const len = payload.length;
    const header = len < 126 ? Buffer.from([0x80 | opcode, 0x80 | len]) : Buffer.alloc(4);
    if (len >= 126) {
      if (len > 0xffff) throw new Error('CountingSocket sends frames of at most 64 KiB');
      header[0] = 0x80 | opcode;
      header[1] = 0x80 | 126;
      header.writeUInt16BE(len, 2);
    }
    const mask = randomBytes(4);
    const masked = Buffer.allocUnsafe(len);
    for (let i = 0; i < len; i++) masked[i] = payload[i]! ^ mask[i & 3]!;
    this.tcp.write(Buffer.concat([header, mask, masked]));
  }

  private read(chunk: Buffer): void {
    let data = this.buf.length ? Buffer.concat([this.buf, chunk]) : chunk;
    this.buf = Buffer.alloc(0);
    while (data.length) {
      if (!this.inFrame) {
        const headerLen = this.startFrame(data);
        if (!headerLen) {
          this.buf = Buffer.from(data); // an incomplete header: wait for more
          return;
        }
        data = data.subarray(headerLen);
        this.inFrame = true;
      }
      const take = Math.min(this.left, data.length);
      if (take) this.payload(data.subarray(0, take));
      this.left -= take;
      data = data.subarray(take);
      if (this.left === 0) {
        this.inFrame = false;
        this.endFrame();
      }
    }
  }

  /** A frame's header was read and its payload is not all read yet. */
  private inFrame = false;

  /** Reads a frame header from `data`: its length, or 0 when it is not all there yet. */
  private startFrame(data: Buffer): number {
    if (data.length < 2) return 0;
    const b1 = data[1]! & 0x7f;
    const need = 2 + (b1 === 126 ? 2 : b1 === 127 ? 8 : 0) + (data[1]! & 0x80 ? 4 : 0);
    if (data.length < need) return 0;
    this.fin = (data[0]! & 0x80) !== 0;
    this.opcode = data[0]! & 0x0f;
    this.left = b1 === 126 ? data.readUInt16BE(2) : b1 === 127 ? Number(data.readBigUInt64BE(2)) : b1;
    if (this.opcode === Op.text || this.opcode === Op.binary) this.msg = { binary: this.opcode === Op.binary, head: [], headLen: 0, bytes: 0, kept: null, decided: false };
    if (this.opcode >= Op.close) this.control = [];
    return need;
  }

  private payload(part: Buffer): void {
    if (this.opcode >= Op.close) {
      this.control.push(Buffer.from(part));
      return;
    }
    const m = this.msg;
    if (!m) return;
    m.bytes += part.length;
    if (m.kept) m.kept.push(Buffer.from(part));
    else if (!m.decided && m.binary) {
      // Compressed: the head is what the bytes so far inflate to, once that is enough.
      const want = HEAD_DEFLATED_BYTES - m.headLen;
      m.head.push(Buffer.from(part.subarray(0, want)));
      m.headLen += Math.min(want, part.length);
      if (inflatedHead(m.head).length >= HEAD_BYTES || m.headLen >= HEAD_DEFLATED_BYTES) this.decide(m, part.subarray(want));
    } else if (!m.decided) {
      const want = HEAD_BYTES - m.headLen;
      m.head.push(Buffer.from(part.subarray(0, want)));
      m.headLen += Math.min(want, part.length);
      if (m.headLen >= HEAD_BYTES) this.decide(m, part.subarray(want));
    }
  }

  private decide(m: NonNullable<CountingSocket['msg']>, after: Buffer): void {
    m.decided = true;
    if (this.keep(this.headOf(m))) m.kept = [...m.head, Buffer.from(after)];
  }

  private headOf(m: NonNullable<CountingSocket['msg']>): string {
    return m.binary ? inflatedHead(m.head) : Buffer.concat(m.head).toString();
  }

  private endFrame(): void {
    if (this.opcode >= Op.close) return this.controlFrame(Buffer.concat(this.control));
    const m = this.msg;
    if (!m || !this.fin) return;
    if (!m.decided) this.decide(m, Buffer.alloc(0));
    this.msg = null;
    this.emit('message', { head: this.headOf(m), bytes: m.bytes, data: m.kept ? Buffer.concat(m.kept) : null, binary: m.binary } satisfies CountedMessage);
  }

  private controlFrame(payload: Buffer): void {
    if (this.opcode === Op.ping) this.frame(Op.pong, payload);
    else if (this.opcode === Op.pong) this.emit('pong');
    else if (this.opcode === Op.close) {
      this.closedWith = { code: payload.length >= 2 ? payload.readUInt16BE(0) : 1005, reason: payload.subarray(2).toString() };
      if (!this.closeSent) {
        this.closeSent = true;
        this.frame(Op.close, payload.subarray(0, 2));
      }
      this.tcp.end();
    }
  }

  private ended(): void {
    const c = this.closedWith ?? { code: 1006, reason: '' };
    this.emit('close', c.code, c.reason);
  }
}

/** The first HEAD_BYTES of JSON that the start of a raw deflate stream inflates to ('' when it is not raw deflate). */
function inflatedHead(start: Buffer[]): string {
  try {
    return inflateRawSync(Buffer.concat(start), { finishFlush: constants.Z_SYNC_FLUSH }).subarray(0, HEAD_BYTES).toString();
  } catch {
    return '';
  }
}
