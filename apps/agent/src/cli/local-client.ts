/** The CLI's side of the local API (src/local-api.ts): HTTP over the daemon's unix socket. */
import { request, type IncomingMessage } from 'node:http';
import { SYSTEMD_UNIT } from '../paths.js';
import { CliError, ExitCode } from './exit-codes.js';

function socketError(err: NodeJS.ErrnoException, socket: string): CliError {
  if (err.code === 'EACCES' || err.code === 'EPERM') {
    return new CliError(`permission denied on ${socket}`, ExitCode.NotRoot, 'The control socket is root-only: run this command with sudo');
  }
  if (err.code === 'ENOENT' || err.code === 'ECONNREFUSED') {
    return new CliError(`weft daemon is not running (no daemon at ${socket})`, ExitCode.DaemonNotRunning,
      `Start it with: sudo systemctl start ${SYSTEMD_UNIT}   (or in the foreground: sudo weft daemon). Use --socket/--state-dir if it runs elsewhere`);
  }
  return new CliError(`cannot talk to weft daemon at ${socket}: ${err.message}`, ExitCode.Generic);
}

function open(socket: string, method: string, path: string, body: unknown, signal?: AbortSignal): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = request({
      socketPath: socket, method, path,
      headers: payload ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) } : {},
      ...(signal && { signal }),
    }, resolve);
    req.on('error', (err: NodeJS.ErrnoException) => reject(err.name === 'AbortError' ? err : socketError(err, socket)));
    req.end(payload);
  });
}

async function readAll(res: IncomingMessage): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const c of res) chunks.push(c as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export interface DaemonError { code: string; message: string }

export class LocalClient {
  constructor(readonly socket: string) {}

  async call<T>(method: 'GET' | 'POST', path: string, body?: unknown): Promise<T> {
    const res = await open(this.socket, method, path, body);
    const text = await readAll(res);
    const parsed = JSON.parse(text) as T & { error?: DaemonError };
    if ((res.statusCode ?? 500) >= 400) {
      const e = parsed.error ?? { code: 'internal', message: `daemon answered ${res.statusCode}` };
      throw Object.assign(new Error(e.message), { daemonCode: e.code });
    }
    return parsed;
  }

  /** GET `path` as text (e.g. the Prometheus exposition); errors as in `call`. */
  async text(path: string): Promise<string> {
    const res = await open(this.socket, 'GET', path, undefined);
    const text = await readAll(res);
    if ((res.statusCode ?? 500) >= 400) {
      const e = (JSON.parse(text) as { error?: DaemonError }).error ?? { code: 'internal', message: `daemon answered ${res.statusCode}` };
      throw Object.assign(new Error(e.message), { daemonCode: e.code });
    }
    return text;
  }

  /** Streams NDJSON events of POST `path`; resolves when the daemon ends the stream. */
  async stream(path: string, body: unknown, onEvent: (e: Record<string, unknown>) => void, signal?: AbortSignal): Promise<void> {
    const res = await open(this.socket, 'POST', path, body, signal);
    if ((res.statusCode ?? 500) >= 400) {
      const parsed = JSON.parse(await readAll(res)) as { error?: DaemonError };
      const e = parsed.error ?? { code: 'internal', message: `daemon answered ${res.statusCode}` };
      throw Object.assign(new Error(e.message), { daemonCode: e.code });
    }
    let buf = '';
    for await (const chunk of res) {
      buf += (chunk as Buffer).toString('utf8');
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl).trim();
        buf = buf.slice(nl + 1);
        if (line) onEvent(JSON.parse(line) as Record<string, unknown>);
      }
    }
  }
}
