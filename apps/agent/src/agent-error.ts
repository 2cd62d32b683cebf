/** An error the daemon reports over the local API: a stable code (cli/exit-codes.ts) and a message. */
import type { AgentErrorCode } from './cli/exit-codes.js';

export class AgentError extends Error {
  constructor(
    readonly code: AgentErrorCode | string,
    message: string,
    options?: { cause?: unknown },
  ) {
    super(message, options);
  }
}

export function errorBody(err: unknown): { code: string; message: string } {
  const e = err as { code?: unknown; message?: unknown };
  if (err instanceof Error && typeof e.code === 'string' && /^[a-z][a-z_]*$/.test(e.code)) return { code: e.code, message: err.message };
  return { code: 'internal', message: err instanceof Error ? err.message : String(err) };
}
