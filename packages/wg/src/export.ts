/**
 * Config export for a node-less peer (a phone or router running the official WireGuard app):
 * wg-quick text and a QR code of it. The private key in the text is the node-less device's own;
 * whoever generates it hands it over once and keeps no copy.
 */
import QRCode from 'qrcode';
import { nodePublicKeyOf, toWireGuardBase64 } from '@weft/crypto';
import type { NodePrivateKey } from '@weft/crypto';
import type { PeerConfig } from './device.js';
import { normalizePeer } from './peer-diff.js';
import { DEFAULT_MTU } from './routes.js';

export interface WgQuickConfig {
  privateKey: NodePrivateKey;
  /** CIDRs of the node-less device, e.g. "100.64.0.7/32". */
  addresses: string[];
  /** Resolver addresses (or search domains) for the `DNS =` line; absent or empty = no line. */
  dns?: string[];
  /** Default 1280. */
  mtu?: number;
  /** Absent = the app picks a random port (the usual choice for a phone). */
  listenPort?: number;
  peers: PeerConfig[];
}

/** wg-quick(8) text: one [Interface], one [Peer] per peer, in the order given. */
export function toWgQuick(cfg: WgQuickConfig): string {
  nodePublicKeyOf(cfg.privateKey); // validates the key before it is written anywhere
  const out = ['[Interface]', `PrivateKey = ${toWireGuardBase64(cfg.privateKey)}`];
  if (cfg.addresses.length) out.push(`Address = ${cfg.addresses.join(', ')}`);
  if (cfg.listenPort) out.push(`ListenPort = ${cfg.listenPort}`);
  if (cfg.dns?.length) out.push(`DNS = ${cfg.dns.join(', ')}`);
  out.push(`MTU = ${cfg.mtu ?? DEFAULT_MTU}`);
  for (const raw of cfg.peers) {
    const p = normalizePeer(raw);
    out.push('', '[Peer]', `PublicKey = ${toWireGuardBase64(p.publicKey)}`);
    // Keep the caller's order and spelling of allowed IPs: this text is read by people too.
    out.push(`AllowedIPs = ${raw.allowedIps.join(', ')}`);
    if (p.endpoint) out.push(`Endpoint = ${p.endpoint}`);
    if (p.persistentKeepalive) out.push(`PersistentKeepalive = ${p.persistentKeepalive}`);
  }
  return out.join('\n') + '\n';
}

/** Error correction M: the official apps scan it fine and a full config still fits comfortably. */
const QR_OPTIONS = { errorCorrectionLevel: 'M', margin: 2 } as const;

/** QR code as UTF-8 half-block characters, for printing in a terminal. */
export function qrTerminal(text: string): Promise<string> {
  return QRCode.toString(text, { ...QR_OPTIONS, type: 'utf8' });
}

/** QR code as an SVG document. */
export function qrSvg(text: string): Promise<string> {
  return QRCode.toString(text, { ...QR_OPTIONS, type: 'svg' });
}

/** QR code as a PNG image. */
export function qrPng(text: string, opts: { scale?: number } = {}): Promise<Buffer> {
  return QRCode.toBuffer(text, { ...QR_OPTIONS, type: 'png', scale: opts.scale ?? 6 });
}
