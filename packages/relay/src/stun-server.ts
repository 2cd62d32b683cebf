/**
 * `StunServer`: answers STUN Binding requests on one UDP socket (RFC 8489; what to answer is
 * stun-binding.ts). `[::]:PORT` is dual-stack (IPv4 peers arrive as `::ffff:a.b.c.d` and are
 * answered with their IPv4 address); `0.0.0.0:PORT` is IPv4 only; a specific address binds only
 * that. Malformed datagrams are counted and dropped; nothing a peer sends can throw out of here.
 */
import { createSocket, type RemoteInfo, type Socket } from 'node:dgram';
import { answerBinding, BindingResponder } from './stun-binding.js';
import { looksLikeInitiation } from './wg-initiation.js';
import { isRelayDatagram } from './relay-udp.js';
import { formatListenAddress, parseListenAddress, type ListenAddress } from './listen-address.js';
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
   * them): how weft-relay uses more than one core. Needs Node.js 22.12 or newer.
   */
  reusePort?: boolean;
  /** Called with each Binding request's source as the server saw it (tests; debug logging). */
  onRequest?: (from: { address: string; port: number }, answer: 'success' | 'error') => void;
}

export class StunServer {
  readonly counters: StunCounters = { requests: 0, responses: 0, errorResponses: 0, malformed: 0, ignored: 0 };
  private readonly socket: Socket;
  private readonly software: Buffer;
  private readonly responder: BindingResponder;
  private readonly log: StunLog | undefined;
  private readonly onRequest: StunServerOptions['onRequest'];
  /**
   * Where WireGuard handshake initiations on this port go (the server's responder key, see
   * wg-responder.ts); unset = they are counted as malformed STUN like any other junk. The two
   * never collide: an initiation is 148 bytes starting 01 00 00 00, and a STUN message of type
   * 0x0100 would declare length 0, i.e. be 20 bytes.
   */
  wireGuard: ((msg: Buffer, from: RemoteInfo) => void) | undefined;
  /**
   * Where the packet relay's UDP datagrams on this port go (RelayServer.receiveUdp); unset = they
   * are counted as malformed STUN. Their first byte is 0xA1 or 0xA3 (relay-udp.ts): a STUN
   * message's first two bits are 0, a WireGuard message's first byte is 1 to 4.
   */
  relay: ((msg: Buffer, from: RemoteInfo) => void) | undefined;

  private constructor(socket: Socket, opts: StunServerOptions) {
    this.socket = socket;
    this.software = Buffer.from(opts.software ?? STUN_SOFTWARE, 'utf8');
    this.responder = new BindingResponder(this.software);
    this.log = opts.log;
    this.onRequest = opts.onRequest;
  }

  /** Binds and resolves once the socket is listening; rejects with the bind error (e.g. EADDRINUSE). */
  static async listen(opts: StunServerOptions): Promise<StunServer> {
    const at = parseListenAddress(opts.listen);
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
    const server = new StunServer(socket, opts);
    // The kernel caps both at net.core.{r,w}mem_max or refuses: the default buffers still work.
    try {
      socket.setRecvBufferSize(STUN_RECV_BUFFER_BYTES);
      socket.setSendBufferSize(STUN_SEND_BUFFER_BYTES);
    } catch {
      // kept the defaults
    }
    socket.on('message', (msg, rinfo) => server.onMessage(msg, rinfo));
    // Sends have no callback (cheaper per datagram): a response the kernel refuses is lost like
    // any UDP datagram, and the client retransmits.
    socket.on('error', (err) => server.log?.warn({ err }, 'STUN socket error'));
    return server;
  }

  /** The bound address (the real port when listening on port 0). */
  address(): ListenAddress {
    const a = this.socket.address();
    return { host: a.address, port: a.port };
  }

  /** The bound address as `HOST:PORT`. */
  toString(): string {
    return formatListenAddress(this.address());
  }

  close(): Promise<void> {
    return new Promise((resolve) => {
      try {
        this.socket.close(() => resolve());
      } catch {
        resolve(); // already closed
      }
    });
  }

  /** Sends a datagram from this socket (the relay's RECV and BIND_ACK). */
  send(msg: Buffer, port: number, address: string): void {
    this.socket.send(msg, port, address);
  }

  private onMessage(msg: Buffer, rinfo: RemoteInfo): void {
    if (this.relay && isRelayDatagram(msg)) {
      try {
        this.relay(msg, rinfo);
      } catch (err) {
        this.log?.warn({ err, from: `${rinfo.address}:${rinfo.port}` }, 'relay datagram handler raised an error; dropped');
      }
      return;
    }
    if (this.wireGuard && looksLikeInitiation(msg)) {
      try {
        this.wireGuard(msg, rinfo);
      } catch (err) {
        this.log?.warn({ err, from: `${rinfo.address}:${rinfo.port}` }, 'WireGuard initiation handler raised an error; dropped');
      }
      return;
    }
    // The common request (bare Binding from an IPv4 peer) from a template; the rest through the codec.
    const quick = this.responder.quick(msg, rinfo);
    if (quick) {
      this.counters.requests++;
      this.counters.responses++;
      this.socket.send(quick, rinfo.port, rinfo.address);
      this.onRequest?.(rinfo, 'success');
      return;
    }
    let answer;
    try {
      answer = answerBinding(msg, rinfo, this.software);
    } catch (err) {
      // A codec bug must not stop the service: count it as malformed and say so.
      this.counters.malformed++;
      this.log?.warn({ err, from: `${rinfo.address}:${rinfo.port}` }, 'STUN datagram raised an error; dropped');
      return;
    }
    switch (answer.kind) {
      case 'success':
        this.counters.requests++;
        this.counters.responses++;
        this.socket.send(answer.response, rinfo.port, rinfo.address);
        this.onRequest?.(rinfo, 'success');
        return;
      case 'error':
        this.counters.requests++;
        this.counters.errorResponses++;
        this.socket.send(answer.response, rinfo.port, rinfo.address);
        this.onRequest?.(rinfo, 'error');
        return;
      case 'ignored':
        this.counters.ignored++;
        return;
      case 'malformed':
        this.counters.malformed++;
        return;
    }
  }
}

/** dgram's `reusePort` exists from Node.js 22.12 (and 23.1). */
export function reusePortSupported(): boolean {
  const [major, minor] = process.versions.node.split('.').map(Number) as [number, number];
  return major > 22 || (major === 22 && minor >= 12);
}
