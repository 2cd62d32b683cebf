/**
 * Parser for `wg show NAME dump`: tab-separated, keys in base64.
 *   interface line: private-key  public-key  listen-port  fwmark
 *   peer lines:     public-key  preshared-key  endpoint  allowed-ips  latest-handshake
 *                   transfer-rx  transfer-tx  persistent-keepalive
 * "(none)" marks an absent endpoint / allowed-ips / key, "off" a disabled keepalive or fwmark.
 */
import { fromWireGuardBase64, parseNodePrivateKey } from '@weft/crypto';
import type { NodePrivateKey } from '@weft/crypto';
import { WgError } from './errors.js';
import type { DeviceState } from './uapi.js';

const NONE = '(none)';

function num(field: string | undefined, what: string): number {
  if (field === 'off') return 0;
  const n = Number(field);
  if (field === undefined || field === '' || !Number.isSafeInteger(n) || n < 0) {
    throw new WgError('command_failed', `wg show dump: bad ${what} ${JSON.stringify(field)}`);
  }
  return n;
}

function privateKeyOf(b64: string): NodePrivateKey | null {
  if (b64 === NONE) return null;
  const raw = Buffer.from(b64, 'base64');
  if (raw.length !== 32) throw new WgError('command_failed', 'wg show dump: bad private key');
  return parseNodePrivateKey(`privkey:${raw.toString('hex')}`);
}

export function parseWgDump(text: string): DeviceState {
  const lines = text.split('\n').filter((l) => l !== '');
  const head = lines[0]?.split('\t');
  if (!head || head.length !== 4) throw new WgError('command_failed', 'wg show dump: missing interface line');
  const state: DeviceState = {
    privateKey: privateKeyOf(head[0]!),
    listenPort: num(head[2], 'listen-port'),
    fwmark: num(head[3], 'fwmark'),
    peers: [],
  };
  for (const line of lines.slice(1)) {
    const f = line.split('\t');
    if (f.length !== 8) throw new WgError('command_failed', `wg show dump: peer line has ${f.length} fields, want 8`);
    const handshake = num(f[4], 'latest-handshake');
    state.peers.push({
      publicKey: fromWireGuardBase64(f[0]!),
      endpoint: f[2] === NONE ? null : f[2]!,
      allowedIps: f[3] === NONE || f[3] === '' ? [] : f[3]!.split(','),
      lastHandshake: handshake === 0 ? null : new Date(handshake * 1000),
      rxBytes: num(f[5], 'transfer-rx'),
      txBytes: num(f[6], 'transfer-tx'),
      persistentKeepalive: num(f[7], 'persistent-keepalive'),
    });
  }
  return state;
}
