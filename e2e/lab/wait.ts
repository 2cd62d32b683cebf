/** Polling with a bound in time and in attempts: nothing in the lab waits forever. */

export interface WaitOptions {
  timeoutMs: number;
  /** Default 50. */
  intervalMs?: number;
  /** Shown in the timeout error, e.g. "server /readyz". */
  what?: string;
}

export class WaitTimeoutError extends Error {
  override name = 'WaitTimeoutError';
}

/** Thrown from a `waitFor` callback: stop waiting now (the process died, say) and reject with it. */
export class GiveUp extends Error {
  override name = 'GiveUp';
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

/**
 * Calls `fn` until it returns a value other than `undefined`, `null` or `false`, and returns that
 * value. A throw from `fn` counts as "not yet" (the last one is the timeout error's cause), except
 * `GiveUp`, which rejects at once.
 */
export async function waitFor<T>(fn: () => T | Promise<T>, opts: WaitOptions): Promise<Exclude<T, undefined | null | false>> {
  const interval = opts.intervalMs ?? 50;
  const deadline = Date.now() + opts.timeoutMs;
  const maxAttempts = Math.ceil(opts.timeoutMs / Math.max(interval, 1)) + 1;
  let lastError: unknown;
  for (let attempt = 0; attempt < maxAttempts; attempt++) {
    try {
      const v = await fn();
      if (v !== undefined && v !== null && v !== false) return v as Exclude<T, undefined | null | false>;
      lastError = undefined;
    } catch (err) {
      if (err instanceof GiveUp) throw err;
      lastError = err;
    }
    const left = deadline - Date.now();
    if (left <= 0) break;
    await sleep(Math.min(interval, left));
  }
  const detail = lastError instanceof Error ? `: ${lastError.message}` : '';
  throw new WaitTimeoutError(`timed out after ${opts.timeoutMs} ms waiting for ${opts.what ?? 'condition'}${detail}`, {
    cause: lastError,
  });
}
