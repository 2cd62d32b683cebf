/**
 * A simulated agent: real keys, the real registration request and the real WebSocket handshake
 * (machine token in the Authorization header), with no WireGuard. Used by the in-process tests
 * and the control-plane benchmark.
 */
import { request as httpsRequest } from 'node:https';
import WebSocket from 'ws';
import { CountingSocket, UpgradeRefused, type CountedMessage } from './counting-socket.js';
import { endpointsRevision, generateMachineKey, generateNodeKey, signMachineToken } from '@weft/crypto';
import { inflateRawSync } from 'node:zlib';
import { MAX_INFLATED_NETMAP_BYTES, NETMAP_ENCODING_DEFLATE, NETMAP_ENCODING_HEADER, NETMAP_ENDPOINTS_HEADER, NETMAP_REVISION_HEADER, resumeStateOf, type Peer, type RegisterResponse, type ResumePresence, type SelfNode } from '@weft/protocol';

/**
 * `at` is performance.timeOrigin + performance.now(): comparable across processes. `bytes`: on
 * the wire (compressed for a binary message); `binary`: it came as raw deflate.
 */
export interface Received { at: number; raw: string; bytes: number; binary: boolean; msg: { type: string; seq: number; [k: string]: unknown } }

/** A message's JSON text: a binary one is raw deflate (NETMAP_ENCODING_HEADER), inflated as the real agent does. */
const messageText = (data: Buffer, binary: boolean) => (binary ? inflateRawSync(data, { maxOutputLength: MAX_INFLATED_NETMAP_BYTES }) : data).toString();

export const now = () => performance.timeOrigin + performance.now();

export class SimAgent {
  readonly machine = generateMachineKey();
  readonly node = generateNodeKey();
  self: SelfNode | null = null;
  socket: WebSocket | CountingSocket | null = null;
  readonly received: Received[] = [];
  peers = new Map<number, Peer>();
  closed: { code: number; reason: string } | null = null;
  /** The server answered the upgrade with an HTTP error instead of 101 (body parsed when JSON). */
  refused: { status: number; type: string | undefined; body: any } | null = null;
  /** Patch-only deltas skipped without parsing when connected with parse: false. */
  patchesSeen = 0;
  /** Sent as `os` in registration when set (the real agent's `os.platform()` and release); unset = an agent too old to report it. */
  os: string | undefined;
  /**
   * The revision of the peer list held (the last one the server sent; forgotten on an upsert or
   * removal that carried none). Sent on connect with `resume`.
   */
  revision: string | null = null;
  /** Called for every message after it is recorded. */
  onMessage: ((r: Received) => void) | null = null;
  private waiters: (() => void)[] = [];

  /** `ca`: PEM the https:// server's certificate is verified against (instead of Node's store). */
  constructor(readonly serverUrl: string, readonly hostname = 'sim', readonly ca?: string) {}

  async register(authKey?: string, hostname = this.hostname): Promise<RegisterResponse> {
    const headers = { 'content-type': 'application/json', authorization: `Bearer ${await signMachineToken(this.machine.privateKey)}` };
    const payload = JSON.stringify({ nodeKey: this.node.publicKey, hostname, ...(this.os ? { os: this.os } : {}), ...(authKey ? { authKey } : {}) });
    const res = this.ca
      ? await postWithCa(`${this.serverUrl}/agent/v1/register`, headers, payload, this.ca)
      : await fetch(`${this.serverUrl}/agent/v1/register`, { method: 'POST', headers, body: payload }).then(async (r) => ({ ok: r.ok, status: r.status, json: await r.json() }));
    const body = res.json as RegisterResponse & { code?: string; status: unknown };
    if (!res.ok) throw Object.assign(new Error(`register failed: ${res.status} ${JSON.stringify(body)}`), { status: res.status, body });
    if (body.status === 'registered') this.self = body.node;
    return body;
  }

  /**
   * Opens the agent socket. `parse` = false keeps full netmaps as raw text (benchmarks with
   * thousands of agents cannot afford to parse megabytes each); deltas are always parsed.
   * `resume`: send the revision held (NETMAP_REVISION_HEADER), as the real agent does; a string
   * sends that instead (tests of stale or malformed revisions). With it, `endpoints` (default
   * true) sends the endpoints revision of the peers held (NETMAP_ENDPOINTS_HEADER: the compact
   * resume), as the real agent does; false = an agent of the older resume; a string sends that.
   * `deflate`: ask for compressed netmaps (NETMAP_ENCODING_HEADER), as the real agent does;
   * absent = an agent that predates them.
   */
  connect(opts: { parse?: boolean; url?: string; resume?: boolean | string; endpoints?: boolean | string; deflate?: boolean } = {}): Promise<void> {
    const parse = opts.parse ?? true;
    const url = `${(opts.url ?? this.serverUrl).replace(/^http/, 'ws')}/agent/v1`;
    return signMachineToken(this.machine.privateKey).then((token) => {
      this.closed = null;
      this.refused = null;
      const held = typeof opts.resume === 'string' ? opts.resume : opts.resume ? this.revision : null;
      const eps = held === null || opts.endpoints === false ? null : typeof opts.endpoints === 'string' ? opts.endpoints : endpointsRevision(this.peers.values());
      const headers = {
        authorization: `Bearer ${token}`,
        ...(held !== null ? { [NETMAP_REVISION_HEADER]: held } : {}),
        ...(eps !== null ? { [NETMAP_ENDPOINTS_HEADER]: eps } : {}),
        ...(opts.deflate ? { [NETMAP_ENCODING_HEADER]: NETMAP_ENCODING_DEFLATE } : {}),
      };
      return parse ? this.openParsing(url, headers) : this.openCounting(url, headers);
    });
  }

  /** Through `ws`: every message whole and parsed. */
  private openParsing(url: string, headers: Record<string, string>): Promise<void> {
    return new Promise<void>((resolve, reject) => {
      const ws = new WebSocket(url, { headers, ...(this.ca ? { ca: this.ca } : {}) });
      this.socket = ws;
      ws.on('open', () => resolve());
      ws.on('unexpected-response', (_req, res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          this.refuse(res.statusCode ?? 0, res.headers['content-type'], Buffer.concat(chunks).toString(), reject);
          ws.terminate();
        });
      });
      ws.on('error', (err) => reject(err));
      ws.on('close', (code, reason) => this.ended(code, reason.toString()));
      ws.on('message', (data: Buffer, binary: boolean) => {
        const raw = messageText(data, binary);
        this.record({ at: now(), raw, bytes: data.length, binary, msg: JSON.parse(raw) as Received['msg'] });
      });
    });
  }

  /**
   * Through a CountingSocket: netmaps and patch-only deltas are counted as their bytes pass and
   * never held (a fleet of thousands would otherwise hold every netmap in flight at once, and
   * checking megabytes of UTF-8 per agent would make the fleet what a storm bench measures);
   * every other delta is parsed.
   */
  private async openCounting(url: string, headers: Record<string, string>): Promise<void> {
    const counted = (head: string) => head.startsWith('{"type":"netmap"') || head.startsWith('{"type":"resume"');
    const patchOnly = (head: string) => /^\{"type":"delta","seq":\d+,"patch"/.test(head);
    let ws: CountingSocket;
    try {
      ws = await CountingSocket.open(url, { headers, ca: this.ca, keep: (head) => !counted(head) && !patchOnly(head) });
    } catch (err) {
      if (err instanceof UpgradeRefused) this.refuse(err.status, err.contentType, err.body, (e) => { throw e; });
      throw err;
    }
    this.socket = ws;
    ws.on('close', (code: number, reason: string) => this.ended(code, reason));
    ws.on('message', (m: CountedMessage) => {
      const at = now();
      if (m.data) {
        const raw = messageText(m.data, m.binary);
        this.record({ at, raw: '', bytes: m.bytes, binary: m.binary, msg: JSON.parse(raw) as Received['msg'] });
      } else if (patchOnly(m.head)) {
        // Online/endpoint patches: counted, not kept (a 10,000-node fleet gets millions).
        this.patchesSeen++;
      } else {
        const type = m.head.startsWith('{"type":"resume"') ? 'resume' : 'netmap';
        const revision = /^\{"type":"\w+","seq":\d+,"revision":"([0-9a-f]{32})"/.exec(m.head)?.[1];
        this.record({ at, raw: '', bytes: m.bytes, binary: m.binary, msg: { type, seq: Number(/"seq":(\d+)/.exec(m.head)?.[1]), ...(revision ? { revision } : {}) } }, false);
      }
    });
    ws.start();
  }

  private refuse(status: number, type: string | undefined, text: string, reject: (err: Error) => void): void {
    let body: unknown = text;
    try {
      body = JSON.parse(text);
    } catch { /* not JSON */ }
    this.refused = { status, type, body };
    reject(Object.assign(new Error(`upgrade refused: HTTP ${status}`), { refused: this.refused }));
  }

  private ended(code: number, reason: string): void {
    this.closed = { code, reason };
    this.wake();
  }

  /** Keeps a message (applying it to `peers` unless it was only counted) and wakes waiters. */
  private record(r: Received, apply = true): void {
    this.received.push(r);
    if (apply) this.apply(r.msg);
    this.holdRevision(r.msg);
    this.onMessage?.(r);
    this.wake();
  }

  send(data: string | Buffer): void {
    this.socket?.send(data);
  }

  close(): void {
    this.socket?.close();
  }

  /** Closes the connection and resolves once it has closed (at once when there is none open). */
  disconnect(): Promise<void> {
    const ws = this.socket;
    if (!ws || this.closed) return Promise.resolve();
    return new Promise((resolve) => {
      ws.once('close', () => resolve());
      ws.close();
    });
  }

  /** Resolves when `pred` holds, checking after each message or close; rejects after timeoutMs. */
  async waitFor(pred: () => boolean, timeoutMs = 10_000, what = 'condition'): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (!pred()) {
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out waiting for ${what}; last messages: ${this.received.slice(-3).map((r) => r.raw.slice(0, 200)).join(' | ')} closed=${JSON.stringify(this.closed)}`);
      await new Promise<void>((resolve) => {
        const t = setTimeout(resolve, Math.min(left, 200));
        this.waiters.push(() => {
          clearTimeout(t);
          resolve();
        });
      });
    }
  }

  private wake(): void {
    const w = this.waiters;
    this.waiters = [];
    for (const f of w) f();
  }

  /** DeltaMessage.revision's rules: a netmap or resume says it; an upsert or removal without one makes it unknown. */
  private holdRevision(msg: Received['msg']): void {
    if (typeof msg.revision === 'string') this.revision = msg.revision;
    else if (msg.type !== 'delta' || msg.upsert || msg.remove) this.revision = null;
  }

  private apply(msg: Received['msg']): void {
    if (msg.type === 'netmap') {
      this.peers = new Map((msg.peers as Peer[]).map((p) => [p.id, p]));
      this.self = msg.self as SelfNode;
      return;
    }
    // A resume keeps the peers held: `presence` and `endpoints` by position (the peers in id
    // order), or `patch` (every peer's volatile fields), and `self` apply below.
    if (msg.type === 'resume' && msg.presence) {
      const { base, state, lastSeen } = msg.presence as ResumePresence;
      const eps = msg.endpoints as string[][] | undefined;
      const ids = [...this.peers.keys()].sort((a, b) => a - b);
      if (state.length !== ids.length) throw new Error(`resume lists ${state.length} peers, ${ids.length} held`);
      ids.forEach((id, i) => {
        const st = resumeStateOf(state[i]!)!;
        const { nat: _nat, ...prev } = this.peers.get(id)!;
        const t = lastSeen[i]!;
        this.peers.set(id, { ...prev, online: st.online, lastSeen: t === null ? null : new Date(base + t).toISOString(), ...(eps ? { endpoints: eps[i]! } : {}), ...(st.nat ? { nat: st.nat } : {}) });
      });
    }
    for (const id of (msg.remove as number[] | undefined) ?? []) this.peers.delete(id);
    for (const p of (msg.upsert as Peer[] | undefined) ?? []) this.peers.set(p.id, p);
    for (const p of (msg.patch as { id: number }[] | undefined) ?? []) {
      const cur = this.peers.get(p.id);
      if (cur) this.peers.set(p.id, { ...cur, ...p });
    }
    if (msg.self) this.self = msg.self as SelfNode;
  }
}

/** fetch cannot be given a CA; node:https can. */
function postWithCa(url: string, headers: Record<string, string>, body: string, ca: string): Promise<{ ok: boolean; status: number; json: unknown }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(url, { method: 'POST', headers, ca }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        const status = res.statusCode ?? 0;
        resolve({ ok: status >= 200 && status < 300, status, json: JSON.parse(Buffer.concat(chunks).toString()) });
      });
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end(body);
  });
}
