/**
 * `weft-server nodes add-peer`: a node-less peer for the official WireGuard app. The key pair is
 * made here, on the admin's machine; only the public key goes to the server. The wg-quick config
 * (with the private key) is printed or written 0600 once and kept nowhere else.
 */
import { writeFileSync } from 'node:fs';
import { generateNodeKey, parseNodePublicKey } from '@weft/crypto';
import type { Node } from '@weft/protocol';
import { qrPng, qrTerminal, toWgQuick } from '@weft/wg';
import { call, type Target } from './client.js';

/** Phones sit behind NAT: keep their mappings open so mesh nodes can reach them. */
const PHONE_KEEPALIVE_S = 25;

export async function addPeer(t: Target, opts: { hostname: string; user: string; tags: string[]; out?: string; qrPng?: string }) {
  const key = generateNodeKey();
  const node = await call<Node>(t, 'POST', '/api/v1/nodes', { user: opts.user, hostname: opts.hostname, nodeKey: key.publicKey, tags: opts.tags });
  const { items } = await call<{ items: Node[] }>(t, 'GET', '/api/v1/nodes');
  const peers = items
    .filter((n) => n.id !== node.id && !n.expired)
    .map((n) => ({
      publicKey: parseNodePublicKey(n.nodeKey),
      allowedIps: [`${n.ipv4}/32`, `${n.ipv6}/128`],
      ...(n.endpoints[0] ? { endpoint: n.endpoints[0] } : {}),
      persistentKeepalive: PHONE_KEEPALIVE_S,
    }));
  const config = toWgQuick({ privateKey: key.privateKey, addresses: [`${node.ipv4}/32`, `${node.ipv6}/128`], peers });
  if (opts.out) writeFileSync(opts.out, config, { mode: 0o600 });
  if (opts.qrPng) writeFileSync(opts.qrPng, await qrPng(config), { mode: 0o600 });
  return { node, config, qr: await qrTerminal(config) };
}
