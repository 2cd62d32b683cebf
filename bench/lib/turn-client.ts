/**
 * A minimal TURN client (RFC 8656) for bench:relay, over UDP or TCP: Allocate with long-term
 * credentials (the 401 gives realm and nonce; key = MD5(username:realm:password)), CreatePermission
 * and ChannelBind for one peer, then data as ChannelData (4-byte header; padded to 4 over TCP).
 * Just enough to push the bench's packets through coturn; not a general client.
 */
import { createHash, randomBytes } from 'node:crypto';
import dgram from 'node:dgram';
import net from 'node:net';
import {
  ATTR_ERROR_CODE, ATTR_NONCE, ATTR_REALM, ATTR_USERNAME, CLASS_ERROR_RESPONSE, CLASS_REQUEST, CLASS_SUCCESS_RESPONSE,
  decodeXorMappedAddress, encodeMessage, encodeXorMappedAddress, getAttribute, parseMessage, type MappedAddress,
} from '@weft/relay';

// RFC 8656 §17-18: methods and attributes (the STUN codec's constants file has only Binding's).
const METHOD_ALLOCATE = 0x003;
const METHOD_CREATE_PERMISSION = 0x008;
const METHOD_CHANNEL_BIND = 0x009;
const ATTR_CHANNEL_NUMBER = 0x000c;
const ATTR_LIFETIME = 0x000d;
const ATTR_XOR_PEER_ADDRESS = 0x0012;
const ATTR_XOR_RELAYED_ADDRESS = 0x0016;
const ATTR_REQUESTED_TRANSPORT = 0x0019;
const PROTOCOL_UDP = 17;

type Transport = 'udp' | 'tcp';
type Attr = { type: number; value: Buffer };

export class TurnClient {
  relayed!: MappedAddress;
  private key!: Buffer;
  private realm!: Buffer;
  private nonce!: Buffer;
  private pending = new Map<string, (m: ReturnType<typeof parseMessage>) => void>();
  private channel = 0;
  private header = Buffer.alloc(4);
  private tcpBuf: Buffer = Buffer.alloc(0);
  /** Data from the bound peer (a view, valid during the call). */
  onData: (data: Buffer) => void = () => {};

  private constructor(private readonly transport: Transport, private readonly udp?: dgram.Socket, private readonly tcp?: net.Socket, private readonly server?: { host: string; port: number }) {}

  static async connect(transport: Transport, host: string, port: number, username: string, password: string): Promise<TurnClient> {
    let c: TurnClient;
    if (transport === 'udp') {
      const s = dgram.createSocket({ type: 'udp4', recvBufferSize: 4 << 20, sendBufferSize: 4 << 20 });
      await new Promise<void>((r) => s.bind(0, '127.0.0.1', r));
      c = new TurnClient('udp', s, undefined, { host, port });
      s.on('message', (m) => c.onMessage(m));
    } else {
      const s = net.connect({ host, port, noDelay: true });
      await new Promise<void>((resolve, reject) => s.once('connect', resolve).once('error', reject));
      c = new TurnClient('tcp', undefined, s);
      s.on('data', (d) => c.onStream(d));
    }
    await c.allocate(username, password);
    return c;
  }

  private async allocate(username: string, password: string): Promise<void> {
    const transport = Buffer.from([PROTOCOL_UDP, 0, 0, 0]);
    const first = await this.request(METHOD_ALLOCATE, [{ type: ATTR_REQUESTED_TRANSPORT, value: transport }], false);
    if (!first.ok || first.message.cls !== CLASS_ERROR_RESPONSE) throw new Error('TURN Allocate without credentials was not refused with 401');
    this.realm = getAttribute(first.message, ATTR_REALM)!;
    this.nonce = getAttribute(first.message, ATTR_NONCE)!;
    this.key = createHash('md5').update(`${username}:${this.realm.toString()}:${password}`).digest();
    this.username = Buffer.from(username);
    const res = await this.request(METHOD_ALLOCATE, [{ type: ATTR_REQUESTED_TRANSPORT, value: transport }, { type: ATTR_LIFETIME, value: Buffer.from([0, 0, 0x0e, 0x10]) }]);
    this.relayed = decodeXorMappedAddress(getAttribute(res, ATTR_XOR_RELAYED_ADDRESS)!, res.transactionId)!;
  }

  private username!: Buffer;

  /** Permission and channel 0x4000 for `peer` (the other client's relayed address). */
  async bind(peer: MappedAddress): Promise<void> {
    const tid = randomBytes(12);
    const addr = () => ({ type: ATTR_XOR_PEER_ADDRESS, value: encodeXorMappedAddress(peer.address, peer.port, tid) });
    await this.request(METHOD_CREATE_PERMISSION, [addr()], true, tid);
    const tid2 = randomBytes(12);
    this.channel = 0x4000;
    await this.request(METHOD_CHANNEL_BIND, [
      { type: ATTR_CHANNEL_NUMBER, value: Buffer.from([0x40, 0x00, 0, 0]) },
      { type: ATTR_XOR_PEER_ADDRESS, value: encodeXorMappedAddress(peer.address, peer.port, tid2) },
    ], true, tid2);
  }

  send(data: Buffer): void {
    const h = this.header;
    h.writeUInt16BE(this.channel, 0);
    h.writeUInt16BE(data.length, 2);
    if (this.udp) {
      this.udp.send([h, data], this.server!.port, this.server!.host);
    } else {
      const pad = (4 - (data.length % 4)) % 4;
      this.tcp!.write(pad ? Buffer.concat([h, data, Buffer.alloc(pad)]) : Buffer.concat([h, data]));
    }
  }

  /** Bytes the TCP socket has not handed to the kernel yet (0 over UDP). */
  get buffered(): number {
    return this.tcp?.writableLength ?? 0;
  }

  close(): void {
    this.udp?.close();
    this.tcp?.destroy();
  }

  private async request(method: number, attrs: Attr[], auth = true, tid = randomBytes(12)): Promise<any> {
    const all: Attr[] = auth
      ? [...attrs, { type: ATTR_USERNAME, value: this.username }, { type: ATTR_REALM, value: this.realm }, { type: ATTR_NONCE, value: this.nonce }]
      : attrs;
    const msg = encodeMessage({ method, cls: CLASS_REQUEST, transactionId: tid, attributes: all, ...(auth ? { integrityKey: this.key } : {}) });
    const answer = new Promise<ReturnType<typeof parseMessage>>((resolve, reject) => {
      this.pending.set(tid.toString('hex'), resolve);
      setTimeout(() => reject(new Error(`TURN method 0x${method.toString(16)}: no answer`)), 5000).unref();
    });
    if (this.udp) this.udp.send(msg, this.server!.port, this.server!.host);
    else this.tcp!.write(msg);
    const r = await answer;
    if (!auth) return r;
    if (!r.ok) throw new Error(`TURN answer unreadable: ${r.reason}`);
    if (r.message.cls !== CLASS_SUCCESS_RESPONSE) {
      const err = getAttribute(r.message, ATTR_ERROR_CODE);
      throw new Error(`TURN method 0x${method.toString(16)} refused: ${err ? `${err[2]! * 100 + err[3]!} ${err.subarray(4).toString()}` : 'no error code'}`);
    }
    return r.message;
  }

  private onMessage(m: Buffer): void {
    if ((m[0]! & 0xc0) === 0x40) {
      this.onData(m.subarray(4, 4 + m.readUInt16BE(2)));
      return;
    }
    const r = parseMessage(m);
    if (!r.ok) return;
    const id = r.message.transactionId.toString('hex');
    this.pending.get(id)?.(r);
    this.pending.delete(id);
  }

  private onStream(d: Buffer): void {
    this.tcpBuf = this.tcpBuf.length ? Buffer.concat([this.tcpBuf, d]) : d;
    let at = 0;
    while (this.tcpBuf.length - at >= 4) {
      const b = this.tcpBuf;
      const len = b.readUInt16BE(at + 2);
      const channel = (b[at]! & 0xc0) === 0x40;
      const total = channel ? 4 + len + ((4 - (len % 4)) % 4) : 20 + len;
      if (b.length - at < total) break;
      this.onMessage(b.subarray(at, at + (channel ? 4 + len : total)));
      at += total;
    }
    this.tcpBuf = at === this.tcpBuf.length ? Buffer.alloc(0) : this.tcpBuf.subarray(at);
  }
}
