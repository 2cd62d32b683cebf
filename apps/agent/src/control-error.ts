/**
 * Errors from the control server, reduced to what the agent decides on: the problem's stable
 * `code` and its `retryable` flag (docs/style.md 8: retries follow the flag, never the text).
 */
import { Problem } from '@weft/protocol';
import { AgentErrorCode } from './cli/exit-codes.js';

export class ControlError extends Error {
  constructor(
    readonly code: string,
    message: string,
    readonly retryable: boolean,
    readonly status?: number,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

/** Turns a non-2xx response into a ControlError, reading problem+json when the server sent it. */
export async function controlErrorFrom(res: Response): Promise<ControlError> {
  const text = await res.text().catch(() => '');
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    body = undefined;
  }
  const problem = Problem.safeParse(body);
  if (problem.success) {
    const p = problem.data;
    return new ControlError(p.code, p.detail ?? p.title, p.retryable, res.status);
  }
  if (res.status >= 500) {
    return new ControlError(AgentErrorCode.ServerError, `control server answered ${res.status}`, true, res.status);
  }
  return new ControlError(AgentErrorCode.ServerError, `control server answered ${res.status}: ${text.slice(0, 200)}`, false, res.status);
}

export function unreachable(serverUrl: string, err: unknown): ControlError {
  // node:http puts the errno code on the error itself (ECONNREFUSED), fetch on its cause; a
  // timeout is an AbortError whose cause is a TimeoutError (whose numeric DOMException code says nothing).
  const e = err as { code?: unknown; message?: string; cause?: { name?: string; code?: unknown; message?: string } };
  const why =
    e.cause?.name === 'TimeoutError' ? 'timed out'
    : typeof e.code === 'string' && e.code !== 'ABORT_ERR' ? e.code
    : typeof e.cause?.code === 'string' ? e.cause.code
    : (e.cause?.message ?? e.message ?? String(err));
  return new ControlError(AgentErrorCode.ServerUnreachable, `cannot reach control server ${serverUrl} (${why})`, true, undefined, { cause: err });
}
