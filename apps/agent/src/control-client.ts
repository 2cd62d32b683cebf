/**
 * HTTP side of the control protocol: registration and deregistration. Every request carries a fresh machine token
 * (an EdDSA JWT signed with the machine key), so possession of the key is proven each time.
 */
import { signMachineToken, type MachinePrivateKey } from '@weft/crypto';
import { LogoutResponse, RegisterResponse, type RegisterRequest } from '@weft/protocol';
import { ControlError, controlErrorFrom, unreachable } from './control-error.js';
import { AgentErrorCode } from './cli/exit-codes.js';

import { LOGOUT_TIMEOUT_MS, REGISTER_TIMEOUT_MS } from './tunables.js';

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

export async function register(serverUrl: string, machineKey: MachinePrivateKey, body: RegisterRequest, signal?: AbortSignal): Promise<RegisterResponse> {
  const token = await signMachineToken(machineKey);
  let res: Response;
  try {
    const timeout = AbortSignal.timeout(REGISTER_TIMEOUT_MS);
    res = await fetch(`${serverUrl}/agent/v1/register`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify(body),
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
  } catch (err) {
    if (signal?.aborted) throw err;
    throw unreachable(serverUrl, err);
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
export async function logout(serverUrl: string, machineKey: MachinePrivateKey): Promise<number | null> {
  const token = await signMachineToken(machineKey);
  let res: Response;
  try {
    res = await fetch(`${serverUrl}/agent/v1/logout`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(LOGOUT_TIMEOUT_MS),
    });
  } catch (err) {
    throw unreachable(serverUrl, err);
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
