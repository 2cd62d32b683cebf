/**
 * HTTPS and WSS served by the server itself: the certificate and key files (`tlsCert`/`tlsKey`),
 * checked at start-up and reloaded without a restart when either file changes. A new pair is
 * swapped in with `server.setSecureContext`, which changes what new connections are handshaken
 * with; connections already open (agent WebSockets) keep theirs. A new pair that cannot be read,
 * does not parse, or whose key does not match its certificate is refused and the old one kept, so
 * a renewal that writes the two files one after the other never takes the server down.
 */
import { readFileSync, unwatchFile, watchFile, type Stats } from 'node:fs';
import { createSecureContext } from 'node:tls';
import { X509Certificate } from 'node:crypto';
import type { FastifyBaseLogger } from 'fastify';
import { TLS_RELOAD_POLL_MS } from './tunables.js';

export interface TlsPair {
  cert: Buffer;
  key: Buffer;
  /** The leaf certificate's not-after, for the metrics gauge and the log. */
  notAfter: Date;
  subject: string;
}

/** Which file of the pair is wrong, so the caller can name the config key it came from. */
export class TlsPairError extends Error {
  constructor(
    readonly file: 'cert' | 'key' | 'pair',
    message: string,
  ) {
    super(message);
  }
}

/** Reads and checks one pair: both readable, the certificate PEM, the key matching it. */
export function loadTlsPair(certPath: string, keyPath: string): TlsPair {
  const cert = readOrThrow(certPath, 'cert');
  const key = readOrThrow(keyPath, 'key');
  let leaf: X509Certificate;
  try {
    leaf = new X509Certificate(cert);
  } catch (err) {
    throw new TlsPairError('cert', `${certPath} is not a PEM certificate (${(err as Error).message})`);
  }
  try {
    createSecureContext({ cert, key });
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    if (/key values mismatch/i.test(e.message)) {
      throw new TlsPairError('pair', `the key in ${keyPath} does not belong to the certificate in ${certPath}`);
    }
    throw new TlsPairError('key', `${keyPath} is not a usable private key (${e.message})`);
  }
  return { cert, key, notAfter: new Date(leaf.validTo), subject: leaf.subject.replace(/\n/g, ', ') };
}

function readOrThrow(path: string, file: 'cert' | 'key'): Buffer {
  try {
    return readFileSync(path);
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.code === 'EISDIR' ? 'is a directory' : e.message;
    throw new TlsPairError(file, `cannot read ${path}: ${why}`);
  }
}

export interface TlsReloaderOptions {
  certPath: string;
  keyPath: string;
  /** The pair the server started with. */
  initial: TlsPair;
  /** `setSecureContext` of the HTTPS server. */
  apply: (pair: TlsPair) => void;
  log: FastifyBaseLogger;
  /** How often the files' mtimes are polled; absent = TLS_RELOAD_POLL_MS. */
  pollMs?: number;
}

/**
 * Watches both files (stat polling: it follows a file replaced by rename or a symlink swapped, as
 * certbot and cert-manager do, where an inotify watch on the old inode would go quiet) and
 * reloads the pair when either changes.
 */
export class TlsReloader {
  private current: TlsPair;
  private readonly listener = (cur: Stats, prev: Stats) => {
    if (cur.mtimeMs !== prev.mtimeMs || cur.ino !== prev.ino || cur.size !== prev.size) this.reload();
  };

  constructor(private readonly opts: TlsReloaderOptions) {
    this.current = opts.initial;
    const interval = opts.pollMs ?? TLS_RELOAD_POLL_MS;
    for (const p of [opts.certPath, opts.keyPath]) watchFile(p, { interval, persistent: false }, this.listener);
  }

  get pair(): TlsPair {
    return this.current;
  }

  /** Re-reads both files; a bad pair is logged and the old one kept. Returns whether it swapped. */
  reload(): boolean {
    let next: TlsPair;
    try {
      next = loadTlsPair(this.opts.certPath, this.opts.keyPath);
    } catch (err) {
      this.opts.log.warn({ reason: (err as Error).message, keeping: { subject: this.current.subject, notAfter: this.current.notAfter.toISOString() } },
        'TLS certificate reload refused; still serving the previous certificate');
      return false;
    }
    if (next.cert.equals(this.current.cert) && next.key.equals(this.current.key)) return false;
    try {
      this.opts.apply(next);
    } catch (err) {
      this.opts.log.warn({ reason: (err as Error).message }, 'TLS certificate reload refused; still serving the previous certificate');
      return false;
    }
    this.current = next;
    this.opts.log.info({ subject: next.subject, notAfter: next.notAfter.toISOString() }, 'TLS certificate reloaded');
    return true;
  }

  close(): void {
    for (const p of [this.opts.certPath, this.opts.keyPath]) unwatchFile(p, this.listener);
  }
}
