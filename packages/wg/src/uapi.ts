/**
 * Client for WireGuard's cross-platform userspace API (UAPI), as wireguard-go serves it on
 * /var/run/wireguard/NAME.sock. Protocol (https://www.wireguard.com/xplatform/):
 *   request  "get=1\n\n"            -> "key=value\n"... "errno=0\n\n"
 *   request  "set=1\nkey=value\n...\n" -> "errno=N\n\n"
 * Interface keys come first; each `public_key=` starts a peer section. Keys are lowercase hex.
 * Encoding and parsing are pure; `UapiClient` does the socket I/O.
 */
import { createConnection } from 'node:net';
import { join } from 'node:path';
import type { NodePrivateKey } from '@weft/crypto';
import { parseNodePrivateKey, parseNodePublicKey, toHex } from '@weft/crypto';
import { WgError } from './errors.js';
import type { PeerOp, PeerState } from './peer-diff.js';

export const UAPI_SOCKET_DIR = '/var/run/wireguard';
/** A reply must arrive within this; wireguard-go answers in microseconds when alive. */
export const UAPI_TIMEOUT_MS = 5_000;

export function uapiSocketPath(name: string, dir = UAPI_SOCKET_DIR): string {
  return join(dir, `${name}.sock`);
}

/** Interface-level settings of a `set=1`; absent = unchanged. */
export interface InterfaceSet {
  privateKey?: NodePrivateKey;
  listenPort?: number;
}

export interface DeviceState {
  privateKey: NodePrivateKey | null;
  listenPort: number;
  fwmark: number;
  peers: PeerState[];
}

/**
 * The full `set=1` request text, blank-line terminated. Never emits `replace_peers`. Every value
 * is checked to be one line: a newline inside one (an endpoint's zone id, say) would let it add
 * lines of its own, such as another peer or a private key. Throws TypeError then.
 */
export function encodeSet(iface: InterfaceSet, ops: PeerOp[]): string {
  const lines = ['set=1'];
  const add = (key: string, value: string | number) => {
    const text = String(value);
    if (/[\r\n\0]/.test(text)) throw new TypeError(`UAPI value for ${key} contains a line break or NUL`);
    lines.push(`${key}=${text}`);
  };
  if (iface.privateKey !== undefined) add('private_key', toHex(iface.privateKey));
  if (iface.listenPort !== undefined) add('listen_port', iface.listenPort);
  for (const op of ops) {
    add('public_key', toHex(op.publicKey));
    if (op.kind === 'remove') {
      add('remove', 'true');
      continue;
    }
    if (!op.create) add('update_only', 'true');
    if (op.endpoint !== undefined) add('endpoint', op.endpoint);
    if (op.persistentKeepalive !== undefined) add('persistent_keepalive_interval', op.persistentKeepalive);
    if (op.allowedIps !== undefined) {
      add('replace_allowed_ips', 'true');
      for (const ip of op.allowedIps) add('allowed_ip', ip);
    }
  }
  return lines.join('\n') + '\n\n';
}

export const GET_REQUEST = 'get=1\n\n';

/** Splits a reply into key/value pairs and checks its trailing errno; throws WgError on errno != 0. */
export function parseReply(text: string): Array<[string, string]> {
  const pairs: Array<[string, string]> = [];
  for (const line of text.split('\n')) {
    if (line === '') continue;
    const eq = line.indexOf('=');
    if (eq <= 0) throw new WgError('uapi_protocol', `malformed UAPI line ${JSON.stringify(line)}`);
    pairs.push([line.slice(0, eq), line.slice(eq + 1)]);
  }
  const last = pairs.at(-1);
  if (!last || last[0] !== 'errno') throw new WgError('uapi_protocol', 'UAPI reply has no errno line');
  const errno = Number(last[1]);
  if (errno !== 0) {
    throw new WgError('uapi_errno', `wireguard-go refused the request (errno ${last[1]})`, { fields: { errno } });
  }
  return pairs.slice(0, -1);
}

function int(value: string, key: string): number {
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) throw new WgError('uapi_protocol', `bad ${key}=${value}`);
  return n;
}

function handshake(sec: number, nsec: number): Date | null {
  return sec === 0 && nsec === 0 ? null : new Date(sec * 1000 + Math.floor(nsec / 1e6));
}

/** Parses a `get=1` reply. Unknown keys are ignored (newer wireguard-go versions add some). */
export function parseGet(text: string): DeviceState {
  const state: DeviceState = { privateKey: null, listenPort: 0, fwmark: 0, peers: [] };
  let peer: (PeerState & { hsSec: number; hsNsec: number }) | null = null;
  const finish = () => {
    if (!peer) return;
    const { hsSec, hsNsec, ...rest } = peer;
    state.peers.push({ ...rest, lastHandshake: handshake(hsSec, hsNsec) });
  };
  for (const [key, value] of parseReply(text)) {
    if (key === 'public_key') {
      finish();
      peer = {
        publicKey: parseNodePublicKey(`nodekey:${value}`), endpoint: null, allowedIps: [], persistentKeepalive: 0,
        lastHandshake: null, rxBytes: 0, txBytes: 0, hsSec: 0, hsNsec: 0,
      };
      continue;
    }
    if (!peer) {
      if (key === 'private_key') state.privateKey = parseNodePrivateKey(`privkey:${value}`);
      else if (key === 'listen_port') state.listenPort = int(value, key);
      else if (key === 'fwmark') state.fwmark = int(value, key);
      continue;
    }
    switch (key) {
      case 'endpoint': peer.endpoint = value; break;
      case 'allowed_ip': peer.allowedIps.push(value); break;
      case 'persistent_keepalive_interval': peer.persistentKeepalive = int(value, key); break;
      case 'last_handshake_time_sec': peer.hsSec = int(value, key); break;
      case 'last_handshake_time_nsec': peer.hsNsec = int(value, key); break;
      case 'rx_bytes': peer.rxBytes = int(value, key); break;
      case 'tx_bytes': peer.txBytes = int(value, key); break;
    }
  }
  finish();
  return state;
}

/** One request over the socket, one connection per request; resolves with the raw reply. */
export function uapiRequest(socketPath: string, request: string, timeoutMs = UAPI_TIMEOUT_MS): Promise<string> {
  return new Promise((resolve, reject) => {
    const sock = createConnection(socketPath);
    let buf = '';
    let done = false;
    const finish = (err: Error | null) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      sock.destroy();
      if (err) reject(err);
      else resolve(buf);
    };
    const timer = setTimeout(
      () => finish(new WgError('uapi_protocol', `no UAPI reply from ${socketPath} within ${timeoutMs} ms`)),
      timeoutMs,
    );
    sock.setEncoding('utf8');
    sock.on('connect', () => sock.write(request));
    sock.on('data', (chunk: string) => {
      buf += chunk;
      // A reply ends with the first blank line ("errno=N\n\n"); nothing else contains one.
      if (buf.startsWith('\n') || buf.includes('\n\n')) finish(null);
    });
    sock.on('end', () => finish(new WgError('uapi_protocol', `UAPI connection closed mid-reply (${buf.length} bytes)`)));
    sock.on('error', (err: NodeJS.ErrnoException) => {
      const unavailable = err.code === 'ENOENT' || err.code === 'ECONNREFUSED';
      finish(new WgError(unavailable ? 'uapi_unavailable' : 'uapi_protocol', `UAPI socket ${socketPath}: ${err.code ?? err.message}`, { cause: err }));
    });
  });
}

export class UapiClient {
  constructor(readonly socketPath: string) {}

  async get(): Promise<DeviceState> {
    return parseGet(await uapiRequest(this.socketPath, GET_REQUEST));
  }

  async set(iface: InterfaceSet, ops: PeerOp[] = []): Promise<void> {
    if (iface.privateKey === undefined && iface.listenPort === undefined && ops.length === 0) return;
    parseReply(await uapiRequest(this.socketPath, encodeSet(iface, ops)));
  }
}
