/**
 * HTTP side of the control protocol: registration and deregistration. Every request carries a fresh machine token
 * (an EdDSA JWT signed with the machine key), so possession of the key is proven each time.
 */
import { signMachineToken, type MachinePrivateKey } from '@weft/crypto';
import { LogoutResponse, RegisterResponse, type RegisterRequest } from '@weft/protocol';
import { ControlError, controlErrorFrom, unreachable } from './control-error.js';
import { AgentErrorCode } from './cli/exit-codes.js';

import { LOGOUT_TIMEOUT_MS, REGISTER_TIMEOUT_MS } from './tunables.js';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { certificateProblem, type Trust } from './tls-trust.js';

/** "http://host:8080/" -> "http://host:8080"; rejects anything that is not http(s). */
export function normaliseServerUrl(input: string): string {
  let url: URL;
  try {
    url = new URL(input);
  } catch {
    throw new ControlError(AgentErrorCode.BadRequest, `not a URL: ${input} (expected e.g. http://10.0.0.1:8080)`, false);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new ControlError(AgentErrorCode.BadRequest, `server URL must be http:// or https://, got ${url.protocol}`, false);
  }
  return url.toString().replace(/\/+$/, '');
}

/** ws(s)://host/agent/v1 for an http(s) server URL. */
export function agentSocketUrl(serverUrl: string): string {
  const url = new URL(serverUrl);
  url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
  url.pathname = url.pathname.replace(/\/+$/, '') + '/agent/v1';
  return url.toString();
}

/**
 * One HTTP(S) request with the agent's trust (fetch cannot be given CA certificates; node:https
 * can), answered as a WHATWG Response so the callers read it as they would fetch's.
 */
export function controlRequest(url: string, init: { method: string; headers: Record<string, string>; body?: string; signal: AbortSignal }, trust: Trust): Promise<Response> {
  return new Promise((resolve, reject) => {
    const target = new URL(url);
    const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
    const req = send(target, { method: init.method, headers: init.headers, signal: init.signal, ...(target.protocol === 'https:' ? { ca: trust.ca } : {}) }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('error', reject);
      res.on('end', () => {
        const headers = new Headers();
        for (const [k, v] of Object.entries(res.headers)) if (typeof v === 'string') headers.set(k, v);
        const status = res.statusCode ?? 0;
        resolve(new Response(status === 204 || status === 304 ? null : Buffer.concat(chunks), { status, headers }));
      });
    });
    req.on('error', reject);
    req.end(init.body);
  });
}

/** A failed request as a ControlError: a certificate it refused says so (and what to do), anything else is unreachable. */
function requestFailed(serverUrl: string, err: unknown, trust: Trust): ControlError {
  const cert = certificateProblem(serverUrl, err, trust);
  if (cert) return new ControlError(AgentErrorCode.ServerCertificate, `${cert.message}. ${cert.hint}`, false, undefined, { cause: err });
  return unreachable(serverUrl, err);
}

export async function register(serverUrl: string, machineKey: MachinePrivateKey, body: RegisterRequest, trust: Trust, signal?: AbortSignal): Promise<RegisterResponse> {
  const token = await signMachineToken(machineKey);
  let res: Response;
  try {
    const timeout = AbortSignal.timeout(REGISTER_TIMEOUT_MS);
    res = await controlRequest(`${serverUrl}/agent/v1/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    }, trust);
  } catch (err) {
    if (signal?.aborted) throw err;
    throw requestFailed(serverUrl, err, trust);
  }
  if (!res.ok) throw await controlErrorFrom(res);
  const parsed = RegisterResponse.safeParse(await res.json().catch(() => undefined));
  if (!parsed.success) throw new ControlError(AgentErrorCode.ServerError, 'control server sent a malformed register response', false);
  return parsed.data;
}

/**
 * `POST /agent/v1/logout`: the server deletes the node this machine key belongs to (peers drop it
 * at once). Resolves with the deleted node's id, or null when the server does not know the node
 * (404 node_not_found: deleted already); rejects with a ControlError otherwise (unreachable,
 * refused). The reply `{deleted}` has no schema in @weft/protocol yet, so only that field is read.
 */
export async function logout(serverUrl: string, machineKey: MachinePrivateKey, trust: Trust): Promise<number | null> {
  const token = await signMachineToken(machineKey);
  let res: Response;
  try {
    res = await controlRequest(`${serverUrl}/agent/v1/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(LOGOUT_TIMEOUT_MS),
    }, trust);
  } catch (err) {
    throw requestFailed(serverUrl, err, trust);
  }
  if (!res.ok) {
    const err = await controlErrorFrom(res);
    if (err.code === 'node_not_found') return null;
    throw err;
  }
  const body = LogoutResponse.safeParse(await res.json().catch(() => undefined));
  if (!body.success) throw new ControlError(AgentErrorCode.ServerError, 'control server sent a malformed logout response', false);
  return body.data.deleted;
}
