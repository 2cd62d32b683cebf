/**
 * `weft-server nodes add-peer`: a node-less peer for the official WireGuard app. The key pair is
 * made here, on the admin's machine; only the public key goes to the server. The wg-quick config
 * (with the private key) is printed, or with `--out` written 0600 to that file only, and kept
 * nowhere else.
 */
import { randomBytes } from 'node:crypto';
import { closeSync, fsyncSync, openSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { generateNodeKey, parseNodePublicKey } from '@weft/crypto';
import type { Node } from '@weft/protocol';
import { qrPng, qrTerminal, toWgQuick } from '@weft/wg';
import { call, type Target } from './client.js';

/** Phones sit behind NAT: keep their mappings open so mesh nodes can reach them. */
const PHONE_KEEPALIVE_S = 25;

export async function addPeer(t: Target, opts: { hostname: string; user: string; tags: string[]; out?: string | undefined; qrPng?: string | undefined }) {
  // Opened before the node is created: a path that cannot be written fails with nothing added.
  const outFile = opts.out ? SecretFile.open(opts.out) : undefined;
  const pngFile = opts.qrPng ? SecretFile.open(opts.qrPng) : undefined;
  try {
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
    outFile?.commit(config);
    pngFile?.commit(await qrPng(config));
    // With --out the terminal QR code is not made: it carries the private key as much as the text does.
    return { node, config, qr: opts.out ? '' : await qrTerminal(config) };
  } finally {
    outFile?.discard();
    pngFile?.discard();
  }
}

/**
 * A file that will hold a private key: created 0600 and exclusively under a fresh name beside
 * `path`, then renamed over it. An existing file (or a symlink planted at `path`) is replaced,
 * never written through, and no reader ever sees the key with wider permissions.
 */
export class SecretFile {
  private done = false;

  private constructor(readonly path: string, private readonly tmp: string, private readonly fd: number) {}

  static open(path: string): SecretFile {
    const tmp = join(dirname(path), `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
    return new SecretFile(path, tmp, openSync(tmp, 'wx', 0o600));
  }

  commit(data: string | Uint8Array): void {
    try {
      writeFileSync(this.fd, data);
      fsyncSync(this.fd);
    } finally {
      closeSync(this.fd);
      this.done = true;
    }
    renameSync(this.tmp, this.path);
  }

  /** Removes the temporary file if commit did not happen (or failed before the rename). */
  discard(): void {
    if (!this.done) {
      closeSync(this.fd);
      this.done = true;
    }
    rmSync(this.tmp, { force: true });
  }
}
