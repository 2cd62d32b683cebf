/**
 * How the admin CLI reaches a server: the admin unix socket in the data directory (no key needed:
 * the socket is owner-only), or any server over HTTP(S) with `--server URL --api-key KEY`.
 */
import { request } from 'node:http';
import type { Problem } from '@weft/protocol';

export class ServerUnreachable extends Error {}

export class ProblemError extends Error {
  /** `where`: what a located problem (line:col) is in, such as the file sent; absent for the rest. */
  constructor(readonly problem: Problem, readonly where?: string) {
    super(problem.detail ?? problem.title);
  }
}

export type Target = { socketPath: string } | { url: string; apiKey: string };

export async function call<T>(target: Target, method: string, path: string, body?: unknown, extraHeaders: Record<string, string> = {}): Promise<T> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  const headers: Record<string, string> = { ...(payload ? { 'content-type': 'application/json' } : {}), ...extraHeaders };
  let status: number;
  let text: string;
  if ('socketPath' in target) {
    ({ status, text } = await new Promise<{ status: number; text: string }>((resolve, reject) => {
      const req = request({ socketPath: target.socketPath, path, method, headers }, (res) => {
        let data = '';
        res.setEncoding('utf8');
        res.on('data', (c: string) => (data += c));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, text: data }));
      });
      req.on('error', (err: NodeJS.ErrnoException) =>
        reject(new ServerUnreachable(`cannot reach the server's admin socket ${target.socketPath} (${err.code ?? err.message}); is weft-server serve running with this --data-dir?`)),
      );
      req.end(payload);
    }));
  } else {
    let res: Response;
    try {
      res = await fetch(new URL(path, target.url), { method, headers: { ...headers, authorization: `Bearer ${target.apiKey}` }, body: payload, signal: AbortSignal.timeout(15_000) });
    } catch (err) {
      throw new ServerUnreachable(`cannot reach ${target.url} (${(err as Error).cause ? String((err as { cause: { code?: string } }).cause.code) : (err as Error).message}); check --server`);
    }
    status = res.status;
    text = await res.text();
  }
  const json = text ? JSON.parse(text) : undefined;
  if (status >= 400) throw new ProblemError(json as Problem);
  return json as T;
}
