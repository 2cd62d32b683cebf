/**
 * `StunServer`: answers STUN Binding requests on one UDP socket (RFC 8489; what to answer is
 * stun-binding.ts). `[::]:PORT` is dual-stack (IPv4 peers arrive as `::ffff:a.b.c.d` and are
 * answered with their IPv4 address); `0.0.0.0:PORT` is IPv4 only; a specific address binds only
 * that. Malformed datagrams are counted and dropped; nothing a peer sends can throw out of here.
 *
 * Two ways to the socket, the same answers: on Linux with the addon built (native-udp.ts), a
 * socket of its own read with recvmmsg and written with sendmmsg, a batch of up to 64 datagrams
 * per syscall and per JS call (node:dgram's one syscall and one callback per datagram each way
 * was the service's whole cost: bench:stun); else node:dgram. `WEFT_UDP_NATIVE=0` forces dgram.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { answerBinding, BindingResponder } from './stun-binding.js';
import { looksLikeInitiation } from './wg-initiation.js';
import { isRelayDatagram } from './relay-udp.js';
import { formatListenAddress, parseListenAddress, type ListenAddress } from './listen-address.js';
import { PEER_IPV4, PEER_IPV6, PEER_MAPPED_IPV4, udpBatchAddon, type UdpBatchAddon, type UdpBatchHandle } from './native-udp.js';
import { STUN_RECV_BUFFER_BYTES, STUN_SEND_BUFFER_BYTES, STUN_SOFTWARE } from './tunables.js';

/** Counters since start, for metrics. */
export interface StunCounters {
  /** Binding requests received (answered with a success or an error response). */
  requests: number;
  /** Success responses sent. */
  responses: number;
  /** Error responses sent (420 Unknown Attribute). */
  errorResponses: number;
  /** Datagrams that were not well-formed STUN: dropped. */
  malformed: number;
  /** Well-formed STUN that needs no answer (indications, responses, other methods): dropped. */
  ignored: number;
}

/** The subset of a pino logger this uses. */
export interface StunLog {
  warn(obj: object, msg: string): void;
  debug(obj: object, msg: string): void;
}

export interface StunServerOptions {
  /** `HOST:PORT`; port 0 picks a free one (see `address()`). */
  listen: string;
  /** SOFTWARE in responses; '' for none. Default `weft`. */
  software?: string;
  log?: StunLog;
  /**
   * Let several processes bind the same port (Linux SO_REUSEPORT; the kernel spreads peers over
   * them): how weft-relay uses more than one core. On node:dgram, needs Node.js 22.12 or newer.
   */
  reusePort?: boolean;
  /**
   * The batched socket (native-udp.ts): unset = when the addon loads (and WEFT_UDP_NATIVE is not
   * 0); true = it or a rejection saying why not; false = node:dgram.
   */
  native?: boolean;
  /** Called with each Binding request's source as the server saw it (tests; debug logging). */
  onRequest?: (from: { address: string; port: number }, answer: 'success' | 'error') => void;
}

export class StunServer {
  readonly counters: StunCounters = { requests: 0, responses: 0, errorResponses: 0, malformed: 0, ignored: 0 };
  /** Exactly one of the two. */
  private readonly socket: Socket | undefined;
  private readonly batch: BatchSocket | undefined;
  private readonly software: Buffer;
  private readonly responder: BindingResponder;
  private readonly log: StunLog | undefined;
  private readonly onRequest: StunServerOptions['onRequest'];
  /**
   * Where WireGuard handshake initiations on this port go (the server's responder key, see
   * wg-responder.ts); unset = they are counted as malformed STUN like any other junk. The two
   * never collide: an initiation is 148 bytes starting 01 00 00 00, and a STUN message of type
   * 0x0100 would declare length 0, i.e. be 20 bytes. The buffer is the handler's to keep.
   */
  wireGuard: ((msg: Buffer, from: RemoteInfo) => void) | undefined;
  /**
   * Where the packet relay's UDP datagrams on this port go (RelayServer.receiveUdp); unset = they
   * are counted as malformed STUN. Their first byte is 0xA1 or 0xA3 (relay-udp.ts): a STUN
   * message's first two bits are 0, a WireGuard message's first byte is 1 to 4. The buffer is
   * the handler's to keep.
   */
  relay: ((msg: Buffer, from: RemoteInfo) => void) | undefined;

  private constructor(io: { socket: Socket } | { batch: BatchSocket }, opts: StunServerOptions) {
    this.socket = 'socket' in io ? io.socket : undefined;
    this.batch = 'batch' in io ? io.batch : undefined;
    this.software = Buffer.from(opts.software ?? STUN_SOFTWARE, 'utf8');
    this.responder = new BindingResponder(this.software);
    this.log = opts.log;
    this.onRequest = opts.onRequest;
  }

  /** Binds and resolves once the socket is listening; rejects with the bind error (e.g. EADDRINUSE). */
  static async listen(opts: StunServerOptions): Promise<StunServer> {
    const at = parseListenAddress(opts.listen);
    const native = opts.native === false ? { reason: 'asked for node:dgram' } : udpBatchAddon();
    if (native.addon) {
      let server: StunServer | undefined;
      const batch = new BatchSocket(native.addon, at, !!opts.reusePort, (n) => server!.onBatch(n));
      server = new StunServer({ batch }, opts);
      opts.log?.debug({ io: 'recvmmsg/sendmmsg', addon: native.path }, 'STUN socket: batched native UDP I/O');
      return server;
    }
    if (opts.native) throw new Error(`the batched UDP socket is not available: ${native.reason}`);
    opts.log?.debug({ io: 'node:dgram', reason: native.reason }, 'STUN socket: node:dgram');
    const v6 = at.host.includes(':');
    if (opts.reusePort && !reusePortSupported()) throw new Error(`sharing a UDP port between processes needs Node.js 22.12 or newer (this is ${process.version})`);
    // Every send goes to the IP a datagram came from: skip dgram's per-send dns.lookup (and the
    // tick it costs) with a lookup that hands the literal straight back.
    const lookup = (address: string, family: unknown, cb: (err: null, address: string, family: number) => void) => cb(null, address, v6 ? 6 : 4);
    const socket = createSocket({ type: v6 ? 'udp6' : 'udp4', ipv6Only: v6 && at.host !== '::', reuseAddr: false, lookup: lookup as never, ...(opts.reusePort ? { reusePort: true } : {}) });
    await new Promise<void>((resolve, reject) => {
      const failed = (err: Error) => {
        socket.close();
        reject(err);
      };
      socket.once('error', failed);
      socket.bind({ address: at.host, port: at.port, exclusive: true }, () => {
        socket.off('error', failed);
        resolve();
      });
    });
    const server = new StunServer({ socket }, opts);
    // The kernel caps both at net.core.{r,w}mem_max or refuses: the default buffers still work.
    try {
      socket.setRecvBufferSize(STUN_RECV_BUFFER_BYTES);
      socket.setSendBufferSize(STUN_SEND_BUFFER_BYTES);
    } catch {
      // kept the defaults
    }
    socket.on('message', (msg, rinfo) => {
      const answer = server.onMessage(msg, rinfo);
      if (answer) server.socket!.send(answer, rinfo.port, rinfo.address);
    });
    // Sends have no callback (cheaper per datagram): a response the kernel refuses is lost like
    // any UDP datagram, and the client retransmits.
    socket.on('error', (err) => server.log?.warn({ err }, 'STUN socket error'));
    return server;
  }

  /** Which socket this is: `native` (recvmmsg/sendmmsg) or `dgram`. */
  get io(): 'native' | 'dgram' {
    return this.batch ? 'native' : 'dgram';
  }

  /** The bound address (the real port when listening on port 0). */
  address(): ListenAddress {
    if (this.batch) return this.batch.address();
    const a = this.socket!.address();
    return { host: a.address, port: a.port };
  }

  /** The bound address as `HOST:PORT`. */
  toString(): string {
    return formatListenAddress(this.address());
  }

  close(): Promise<void> {
    if (this.batch) {
      this.batch.close();
      return Promise.resolve();
    }
    return new Promise((resolve) => {
      try {
        this.socket!.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    });
  }

  /** Sends a datagram from this socket (the relay's RECV and BIND_ACK). A bad destination is logged, never thrown. */
  send(msg: Buffer, port: number, address: string): void {
    if (this.batch) {
      const rc = this.batch.sendTo(msg, port, address);
      if (rc < 0 && !TRANSIENT_SEND_ERRORS.has(-rc)) this.log?.warn({ errno: rc, to: `${address}:${port}` }, 'STUN socket send failed');
      return;
    }
    try {
      this.socket!.send(msg, port, address);
    } catch (err) {
      this.log?.warn({ err, to: `${address}:${port}` }, 'STUN socket send failed');
    }
  }

  /**
   * One batch from the native socket: each datagram is answered as onMessage would (the common
   * Binding request straight into the outgoing batch, no buffer or address text made for it),
   * the answers go out with one sendmmsg. Handlers get a copy: the receive buffer is reused.
   */
  private onBatch(n: number): void {
    const b = this.batch!;
    if (n < 0) {
      this.log?.warn({ errno: n }, 'STUN socket error');
      return;
    }
    const { recv, recvTable, out, outTable } = b;
    const { SLOT, RECV_ENTRY, SEND_ENTRY } = b.addon;
    const quickLength = this.responder.answerLength;
    let queued = 0;
    let outAt = 0;
    for (let i = 0; i < n; i++) {
      const e = i * RECV_ENTRY;
      try {
        const length = recvTable.readUInt32LE(e);
        const port = recvTable.readUInt16LE(e + 4);
        const kind = recvTable[e + 6]!;
        if (recvTable[e + 7]) {
          this.counters.malformed++; // longer than a slot: no STUN, relay or WireGuard datagram is
          continue;
        }
        const msg = recv.subarray(i * SLOT, i * SLOT + length);
        let answer: Buffer | undefined;
        let written = 0;
        if ((kind === PEER_IPV4 || kind === PEER_MAPPED_IPV4) && outAt + quickLength <= out.length) written = this.responder.quickInto(msg, recvTable.readUInt32BE(e + 8), port, out, outAt);
        if (written) {
          this.counters.requests++;
          this.counters.responses++;
          if (this.onRequest) this.onRequest({ address: b.peer(i), port }, 'success');
        } else {
          const address = b.peer(i);
          answer = this.onMessage(Buffer.from(msg), { address, family: kind === PEER_IPV6 || address.includes(':') ? 'IPv6' : 'IPv4', port, size: length });
          if (!answer) continue;
          if (outAt + answer.length > out.length) {
            this.send(answer, port, address);
            continue;
          }
          written = answer.copy(out, outAt);
        }
        const t = queued * SEND_ENTRY;
        outTable.writeUInt32LE(outAt, t);
        outTable.writeUInt32LE(written, t + 4);
        outTable.writeInt32LE(i, t + 8);
        outAt += written;
        queued++;
      } catch (err) {
        this.counters.malformed++;
        this.log?.warn({ err }, 'STUN datagram raised an error; dropped');
      }
    }
    // A response the kernel refuses (full send buffer) is lost like any UDP datagram, and the client retransmits.
    if (queued) b.sendBatch(queued);
  }

  /** One datagram: hands it to the relay or WireGuard hook, or returns the STUN answer to send (counted). */
  private onMessage(msg: Buffer, rinfo: RemoteInfo): Buffer | undefined {
    if (this.relay && isRelayDatagram(msg)) {
      try {
        this.relay(msg, rinfo);
      } catch (err) {
        this.log?.warn({ err, from: `${rinfo.address}:${rinfo.port}` }, 'relay datagram handler raised an error; dropped');
      }
      return undefined;
    }
    if (this.wireGuard && looksLikeInitiation(msg)) {
      try {
        this.wireGuard(msg, rinfo);
      } catch (err) {
        this.log?.warn({ err, from: `${rinfo.address}:${rinfo.port}` }, 'WireGuard initiation handler raised an error; dropped');
      }
      return undefined;
    }
    // The common request (bare Binding from an IPv4 peer) from a template; the rest through the codec.
    const quick = this.responder.quick(msg, rinfo);
    if (quick) {
      this.counters.requests++;
      this.counters.responses++;
      this.onRequest?.(rinfo, 'success');
      return quick;
    }
    let answer;
    try {
      answer = answerBinding(msg, rinfo, this.software);
    } catch (err) {
      // A codec bug must not stop the service: count it as malformed and say so.
      this.counters.malformed++;
      this.log?.warn({ err, from: `${rinfo.address}:${rinfo.port}` }, 'STUN datagram raised an error; dropped');
      return undefined;
    }
    switch (answer.kind) {
      case 'success':
        this.counters.requests++;
        this.counters.responses++;
        this.onRequest?.(rinfo, 'success');
        return answer.response;
      case 'error':
        this.counters.requests++;
        this.counters.errorResponses++;
        this.onRequest?.(rinfo, 'error');
        return answer.response;
      case 'ignored':
        this.counters.ignored++;
        return undefined;
      case 'malformed':
        this.counters.malformed++;
        return undefined;
    }
  }
}

/** Send errors that are a full buffer, not a bad destination: dropped quietly, as dgram would be. */
const TRANSIENT_SEND_ERRORS = new Set([11 /* EAGAIN */, 105 /* ENOBUFS */]);

/** The native socket and the buffers it shares with JS (their layout: udp-batch.c). */
class BatchSocket {
  readonly recv: Buffer;
  readonly recvTable: Buffer;
  readonly out: Buffer;
  readonly outTable: Buffer;
  private readonly handle: UdpBatchHandle;
  private closed = false;

  constructor(readonly addon: UdpBatchAddon, at: ListenAddress, reusePort: boolean, onBatch: (n: number) => void) {
    const { BATCH, SLOT, RECV_ENTRY, SEND_ENTRY } = addon;
    this.recv = Buffer.alloc(BATCH * SLOT);
    this.recvTable = Buffer.alloc(BATCH * RECV_ENTRY);
    this.out = Buffer.alloc(BATCH * SLOT);
    this.outTable = Buffer.alloc(BATCH * SEND_ENTRY);
    const v6 = at.host.includes(':');
    this.handle = addon.open(at.host, at.port, v6 && at.host !== '::', reusePort, STUN_RECV_BUFFER_BYTES, STUN_SEND_BUFFER_BYTES, this.recv, this.recvTable, this.out, this.outTable, onBatch);
  }

  address(): ListenAddress {
    const [host, port] = this.addon.address(this.handle);
    return { host, port };
  }

  peer(i: number): string {
    return this.addon.peer(this.handle, i);
  }

  sendBatch(n: number): number {
    return this.closed ? 0 : this.addon.sendBatch(this.handle, n);
  }

  sendTo(msg: Buffer, port: number, address: string): number {
    return this.closed ? -9 /* EBADF */ : this.addon.sendTo(this.handle, msg, port, address);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.addon.close(this.handle);
  }
}

/** dgram's `reusePort` exists from Node.js 22.12 (and 23.1). */
export function reusePortSupported(): boolean {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  return major > 22 || (major === 22 && minor >= 12);
}
