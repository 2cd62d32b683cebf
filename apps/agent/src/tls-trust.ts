/**
 * What the agent trusts when the control server speaks https/wss: the operating system's store,
 * Node's bundled roots, and the CA of `weft up --ca-file FILE` (persisted with the server URL, so a
 * restarted daemon trusts the same). Also: what a certificate failure means in words a person can
 * act on, and whether a plain-http server URL leaves the control channel unprotected.
 */
import { readFileSync } from 'node:fs';
import { isIP } from 'node:net';
import * as tls from 'node:tls';
import { X509Certificate } from 'node:crypto';
import { AgentError } from './agent-error.js';
import { AgentErrorCode } from './cli/exit-codes.js';

export interface Trust {
  /** The extra CA file, absolute; null = the system store and Node's roots only. */
  caFile: string | null;
  /** Every CA certificate (PEM) a server certificate may chain to. */
  ca: string[];
}

let systemCas: string[] | undefined;

/** The system store (read once) plus Node's bundled roots plus NODE_EXTRA_CA_CERTS. */
function baseCas(): string[] {
  if (!systemCas) {
    // tls.getCACertificates: Node 22.15 / 23.10 and later (not yet in @types/node here).
    const get = (tls as { getCACertificates?: (which: 'default' | 'system') => string[] }).getCACertificates;
    const read = (which: 'default' | 'system') => {
      try {
        return get?.(which) ?? [];
      } catch {
        return []; // a platform without a readable system store: Node's roots still apply
      }
    };
    systemCas = [...new Set([...read('default'), ...tls.rootCertificates, ...read('system')])];
  }
  return systemCas;
}

/** Reads `caFile` (PEM, one or more certificates); a missing or empty file is a bad request naming it. */
export function loadTrust(caFile: string | null): Trust {
  if (!caFile) return { caFile: null, ca: baseCas() };
  let text: string;
  try {
    text = readFileSync(caFile, 'utf8');
  } catch (err) {
    const e = err as NodeJS.ErrnoException;
    const why = e.code === 'ENOENT' ? 'no such file' : e.code === 'EACCES' ? 'permission denied' : e.message;
    throw new AgentError(AgentErrorCode.BadRequest, `cannot read CA file ${caFile}: ${why}`);
  }
  const pems = text.match(/-----BEGIN CERTIFICATE-----[\s\S]+?-----END CERTIFICATE-----/g) ?? [];
  for (const pem of pems) {
    try {
      new X509Certificate(pem);
    } catch (err) {
      throw new AgentError(AgentErrorCode.BadRequest, `CA file ${caFile} holds a certificate that does not parse (${(err as Error).message})`);
    }
  }
  if (pems.length === 0) throw new AgentError(AgentErrorCode.BadRequest, `CA file ${caFile} holds no PEM certificate (-----BEGIN CERTIFICATE-----)`);
  return { caFile, ca: [...baseCas(), ...pems] };
}

/** OpenSSL's verification codes (as Node reports them) that mean "this server's certificate is not acceptable". */
const CERT_CODES: Record<string, string> = {
  CERT_HAS_EXPIRED: 'has expired',
  CERT_NOT_YET_VALID: 'is not valid yet (check the clock here and on the server)',
  DEPTH_ZERO_SELF_SIGNED_CERT: 'is self-signed and not trusted here',
  SELF_SIGNED_CERT_IN_CHAIN: 'chains to a CA that is not trusted here',
  UNABLE_TO_VERIFY_LEAF_SIGNATURE: 'is signed by a CA that is not trusted here',
  UNABLE_TO_GET_ISSUER_CERT: 'is signed by a CA that is not trusted here',
  UNABLE_TO_GET_ISSUER_CERT_LOCALLY: 'is signed by a CA that is not trusted here',
  ERR_TLS_CERT_ALTNAME_INVALID: 'does not name this server',
  CERT_REVOKED: 'was revoked',
  CERT_SIGNATURE_FAILURE: 'has a bad signature',
  CERT_UNTRUSTED: 'is not trusted for this purpose',
  INVALID_PURPOSE: 'is not a server certificate',
};

/**
 * A certificate failure as a message and what to do about it, or null when `err` is not one.
 * Looks through `cause` (fetch and ws wrap the TLS error).
 */
export function certificateProblem(serverUrl: string, err: unknown, trust: Trust): { message: string; hint: string } | null {
  let e: unknown = err;
  for (let i = 0; i < 4 && e; i++) {
    const code = (e as { code?: unknown }).code;
    if (typeof code === 'string' && code in CERT_CODES) {
      const what = `the control server's certificate (${serverUrl}) ${CERT_CODES[code]} [${code}]`;
      const hint =
        code === 'CERT_HAS_EXPIRED'
          ? 'Renew the certificate on the server (weft-server reloads --tls-cert and --tls-key when they change); the agent retries on its own'
          : code === 'CERT_NOT_YET_VALID'
            ? 'Check the clocks; the agent retries on its own'
            : code === 'ERR_TLS_CERT_ALTNAME_INVALID'
              ? `Use the name the certificate was issued for in --server, or reissue it for ${new URL(serverUrl).hostname}`
              : trust.caFile
                ? `It does not chain to ${trust.caFile} or the system store: pass the CA that signed it with --ca-file FILE`
                : 'Pass the CA that signed it: weft up --server URL --ca-file FILE (or install it in the system store)';
      return { message: what, hint };
    }
    e = (e as { cause?: unknown }).cause;
  }
  return null;
}

/**
 * Why the control channel is not protected, or null when it is (https) or stays on this host
 * (plain http to a loopback address). Shown by `weft up` and `weft status`.
 */
export function plainHttpWarning(serverUrl: string | null): string | null {
  if (!serverUrl) return null;
  const url = new URL(serverUrl);
  if (url.protocol !== 'http:') return null;
  const host = url.hostname.replace(/^\[|\]$/g, '');
  const loopback = host === 'localhost' || host.endsWith('.localhost') || (isIP(host) === 4 && host.startsWith('127.')) || host === '::1';
  if (loopback) return null;
  return `the control channel to ${serverUrl} is NOT PROTECTED: plain HTTP, so anyone on the path can read and change what the server tells this node (peers, keys, addresses). Use an https:// server URL (weft-server --tls-cert/--tls-key, or a TLS proxy in front)`;
}
