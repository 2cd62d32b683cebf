/**
 * The daemon's local control API: HTTP/1.1 with JSON bodies on a unix socket that only root may
 * open (socket 0600). The CLI is its only intended client; scripts may use it too.
 *
 *   GET  /v1/status   -> 200 Status (src/status.ts)
 *   GET  /v1/metrics  -> 200 text/plain Prometheus exposition (src/metrics.ts);
 *                     /v1/metrics?format=json -> 200 {"samples":[{name, labels, value}]}
 *   GET  /v1/doctor   -> 200 DoctorReport (src/doctor/checks.ts): every check PASS/WARN/FAIL with its fix
 *   GET  /v1/netcheck -> 200 NetcheckReport (src/netcheck.ts), after the probes (a few seconds);
 *                     409 not_logged_in / no_regions when there is nothing to check against
 *   POST /v1/up       {server?, authKey?, hostname?, caFile?} -> 200 application/x-ndjson, one event per line:
 *                     {"type":"login","url","code","expiresAt"}  (interactive login waiting)
 *                     {"type":"registered","node"}               (server accepted the node)
 *                     {"type":"up","status"}                     (netmap applied: done)
 *                     {"type":"error","code","message"}          (failed: done)
 *                     Closing the request cancels a join that is still waiting.
 *   POST /v1/down     -> 200 Status
 *   POST /v1/logout   -> 200 {serverNotified, serverError, status}  (serverError: why the server
 *                     was not told, null when it was; keys and state are gone either way)
 * Errors outside the stream: 4xx/5xx with {"error":{"code","message"}}.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { connect } from 'node:net';
import { chmod, mkdir, rm } from 'node:fs/promises';
import { dirname } from 'node:path';
import type { Agent, UpRequest } from './agent.js';
import { errorBody, type AgentError } from './agent-error.js';
import { AgentErrorCode } from './cli/exit-codes.js';
import type { Logger } from './log.js';
import { exposition, samplesOf } from './metrics.js';

const MAX_BODY_BYTES = 16 * 1024;

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

async function readJson(req: IncomingMessage): Promise<Record<string, unknown>> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, 'bad_request', 'request body too large');
    chunks.push(chunk as Buffer);
  }
  if (size === 0) return {};
  let body: unknown;
  try {
    body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
  } catch {
    throw new HttpError(400, 'bad_request', 'body is not valid JSON');
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new HttpError(400, 'bad_request', 'body must be a JSON object');
  return body as Record<string, unknown>;
}

export function parseUpRequest(body: Record<string, unknown>): UpRequest {
  const out: UpRequest = {};
  for (const [k, v] of Object.entries(body)) {
    if (k !== 'server' && k !== 'authKey' && k !== 'hostname' && k !== 'caFile') throw new HttpError(400, 'bad_request', `unknown field "${k}"`);
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string' || v.length === 0 || v.length > (k === 'caFile' ? 4096 : 253)) throw new HttpError(400, 'bad_request', `"${k}" must be a non-empty string`);
    out[k] = v;
  }
  return out;
}

function sendJson(res: ServerResponse, status: number, body: unknown): void {
  res.writeHead(status, { 'content-type': 'application/json' });
  res.end(JSON.stringify(body) + '\n');
}

export function createLocalApi(agent: Agent, log: Logger): Server {
  return createServer((req, res) => {
    handle(agent, req, res).catch((err: unknown) => {
      if (err instanceof HttpError) return sendJson(res, err.status, { error: { code: err.code, message: err.message } });
      log('error', 'local API request failed', { path: req.url, error: (err as Error).message });
      if (!res.headersSent) sendJson(res, 500, { error: errorBody(err) });
      else res.end();
    });
  });
}

async function handle(agent: Agent, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const route = `${req.method} ${req.url}`;
  switch (route) {
    case 'GET /v1/status':
      return sendJson(res, 200, await agent.status());
    case 'GET /v1/metrics':
      res.writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' });
      return void res.end(exposition(await agent.metrics()));
    case 'GET /v1/metrics?format=json':
      return sendJson(res, 200, { samples: samplesOf(await agent.metrics()) });
    case 'GET /v1/doctor':
      return sendJson(res, 200, await agent.doctor());
    case 'GET /v1/netcheck':
      try {
        return sendJson(res, 200, await agent.netcheck());
      } catch (err) {
        const code = (err as AgentError).code;
        if (code === AgentErrorCode.NotLoggedIn || code === AgentErrorCode.NoRegions) throw new HttpError(409, code, (err as Error).message);
        throw err;
      }
    case 'POST /v1/up':
      return up(agent, parseUpRequest(await readJson(req)), req, res);
    case 'POST /v1/down':
      await readJson(req);
      await agent.down();
      return sendJson(res, 200, await agent.status());
    case 'POST /v1/logout': {
      await readJson(req);
      const result = await agent.logout();
      return sendJson(res, 200, { ...result, status: await agent.status() });
    }
    default:
      throw new HttpError(404, 'not_found', `no route ${route}`);
  }
}

async function up(agent: Agent, body: UpRequest, req: IncomingMessage, res: ServerResponse): Promise<void> {
  const abort = new AbortController();
  res.on('close', () => { if (!res.writableFinished) abort.abort(); });
  res.writeHead(200, { 'content-type': 'application/x-ndjson', 'cache-control': 'no-store' });
  const send = (event: unknown) => res.write(JSON.stringify(event) + '\n');
  try {
    await agent.up(body, send, abort.signal);
    send({ type: 'up', status: await agent.status() });
  } catch (err) {
    send({ type: 'error', ...errorBody(err) });
  }
  res.end();
  void req;
}

/**
 * Listens on `path` with mode 0600. A leftover socket from a crashed daemon is removed; a live
 * one means another daemon owns it, and that is an error.
 */
export async function listenLocal(server: Server, path: string): Promise<void> {
  await mkdir(dirname(path), { recursive: true, mode: 0o755 });
  if (await socketAlive(path)) throw new Error(`another weft daemon is already listening on ${path}`);
  await rm(path, { force: true });
  const oldMask = process.umask(0o177); // the socket is born 0600: no window where others may connect
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(path, () => {
        server.off('error', reject);
        resolve();
      });
    });
  } finally {
    process.umask(oldMask);
  }
  await chmod(path, 0o600);
}

function socketAlive(path: string): Promise<boolean> {
  return new Promise((resolve) => {
    const s = connect(path);
    s.once('connect', () => {
      s.destroy();
      resolve(true);
    });
    s.once('error', () => resolve(false));
  });
}
