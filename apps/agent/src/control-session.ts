/**
 * The one WebSocket to the control server (`/agent/v1`), kept open: a fresh machine token per
 * connect, 45 s of silence counts as a dead connection, and any close that is not final is
 * followed by a reconnect after a jittered exponential backoff. Final closes (node deleted,
 * expired, unknown machine key) stop the session and are reported once.
 */
import WebSocket from 'ws';
import { signMachineToken, type MachinePrivateKey } from '@weft/crypto';
import { CloseCode, NETMAP_ENCODING_DEFLATE, NETMAP_ENCODING_HEADER, NETMAP_ENDPOINTS_HEADER, NETMAP_REVISION_HEADER, Problem, RegisterErrorCode, type AgentMessage, type ServerMessage } from '@weft/protocol';
import { backoffDelay, type BackoffOptions } from './backoff.js';
import { CONNECT_TIMEOUT_MS, RECONNECT_BACKOFF, SILENCE_TIMEOUT_MS } from './tunables.js';
import { agentSocketUrl } from './control-client.js';
import type { Logger } from './log.js';
import { messageText, readServerMessage, type SkippedPeer } from './server-message.js';
import { certificateProblem, type Trust } from './tls-trust.js';


export type Final = 'revoked' | 'expired' | 'upgrade-required';

/**
 * What a close means: stop for good (and why), reconnect, or `unauthorized`: the server does not
 * know our machine key (deleted while we were offline) or rejected the token. The session retries
 * that once with a fresh token, so a single bad token cannot revoke a node, then treats it as revoked.
 */
type Closing = Final | 'reconnect' | 'unauthorized';

export function classifyClose(code: number): Closing {
  switch (code) {
    case CloseCode.NodeDeleted:
      return 'revoked';
    case CloseCode.Unauthorized:
      return 'unauthorized';
    case CloseCode.NodeExpired:
      return 'expired';
    case CloseCode.UpgradeRequired:
      return 'upgrade-required';
    default:
      return 'reconnect';
  }
}

/**
 * Same decision for a refused upgrade: the server authenticates before upgrading and answers
 * problem+json (401 machine_unauthorized: bad token or no node has our machine key; 410
 * node_expired). The problem code decides first, then the status.
 */
export function classifyRefusal(status: number, problemCode: string | undefined): Closing {
  if (problemCode === 'node_deleted') return 'revoked';
  if (problemCode === 'node_expired') return 'expired';
  // Suspension is lifted by an admin: keep trying with backoff rather than tear down.
  if (problemCode === RegisterErrorCode.UserSuspended) return 'reconnect';
  if (status === 401) return 'unauthorized';
  if (status === 410) return 'expired';
  if (status === 426) return 'upgrade-required';
  if (status === 403) return 'revoked';
  return 'reconnect';
}

export interface SessionEvents {
  /** `skipped`: peer entries of `msg` that were malformed and left out. */
  onMessage(msg: ServerMessage, skipped: SkippedPeer[]): void;
  /** A socket opened; the server's netmap follows. */
  onOpen(): void;
  /** The socket is gone and another attempt follows after `retryInMs`. */
  onDisconnect(reason: string, retryInMs: number): void;
  onFinal(final: Final, reason: string): void;
  /**
   * The server's TLS certificate was refused (message and what to do). The session keeps
   * retrying with backoff: a renewed certificate, or a CA file fixed, lets it in without a restart.
   */
  onCertificateError?(message: string, hint: string): void;
}

export interface SessionOptions {
  serverUrl: string;
  machineKey: MachinePrivateKey;
  /** CAs the wss:// server certificate is verified against. */
  trust: Trust;
  log: Logger;
  events: SessionEvents;
  /** The peer-list revision the agent holds, sent on each connect so the server may resume; null = none. */
  heldRevision?: () => string | null;
  /** The endpoints revision of the peers held (sent with the revision: it also says we read the compact resume). */
  heldEndpoints?: () => string | null;
  backoff?: BackoffOptions;
  silenceTimeoutMs?: number;
}

export class ControlSession {
  private ws: WebSocket | undefined;
  private attempt = 0;
  private unauthorizedStreak = 0;
  private stopped = false;
  private retryTimer: NodeJS.Timeout | undefined;
  private silenceTimer: NodeJS.Timeout | undefined;

  constructor(private readonly opts: SessionOptions) {}

  start(): void {
    this.stopped = false;
    void this.connect();
  }

  stop(): void {
    this.stopped = true;
    const ws = this.detach();
    if (ws) {
      ws.close(1000, 'agent stopping');
      // A close handshake the server never answers must not keep the socket alive.
      setTimeout(() => ws.terminate(), 1000).unref();
    }
  }

  /** Cancels the timers and lets go of the socket (its events no longer reach us); returns it, to close. */
  private detach(): WebSocket | undefined {
    clearTimeout(this.retryTimer);
    clearTimeout(this.silenceTimer);
    const ws = this.ws;
    this.ws = undefined;
    if (ws) {
      ws.removeAllListeners();
      ws.on('error', () => {});
    }
    return ws;
  }

  get connected(): boolean {
    return this.ws?.readyState === WebSocket.OPEN;
  }

  /**
   * This host's addresses changed (roamed): the connection may be bound to an address that is
   * gone, and would take SILENCE_TIMEOUT_MS to notice. Drop it and connect again at once.
   */
  reconnectNow(reason: string): void {
    if (this.stopped) return;
    this.detach()?.terminate();
    this.attempt = 0;
    this.opts.log('info', 'reconnecting the control connection', { reason });
    void this.connect();
  }

  send(msg: AgentMessage): boolean {
    if (!this.connected) return false;
    this.ws!.send(JSON.stringify(msg));
    return true;
  }

  /** A netmap arrived: the link works, so the next disconnect starts the backoff from the bottom. */
  markHealthy(): void {
    this.attempt = 0;
    this.unauthorizedStreak = 0;
  }

  private async connect(): Promise<void> {
    if (this.stopped) return;
    const { serverUrl, machineKey, log } = this.opts;
    let token: string;
    try {
      token = await signMachineToken(machineKey);
    } catch (err) {
      this.retry(`signing machine token failed: ${(err as Error).message}`);
      return;
    }
    if (this.stopped) return;
    const url = agentSocketUrl(serverUrl);
    const revision = this.opts.heldRevision?.() ?? null;
    const endpoints = revision !== null ? this.opts.heldEndpoints?.() ?? null : null;
    // Netmaps compressed: a tenth of the bytes for us and for a server sending thousands at once.
    const headers = {
      authorization: `Bearer ${token}`,
      [NETMAP_ENCODING_HEADER]: NETMAP_ENCODING_DEFLATE,
      ...(revision !== null ? { [NETMAP_REVISION_HEADER]: revision } : {}),
      ...(endpoints !== null ? { [NETMAP_ENDPOINTS_HEADER]: endpoints } : {}),
    };
    const ws = new WebSocket(url, { headers, handshakeTimeout: CONNECT_TIMEOUT_MS, ca: this.opts.trust.ca });
    this.ws = ws;
    let settled = false;
    let certError: string | undefined;
    const done = (fn: () => void) => {
      if (settled || this.ws !== ws) return;
      settled = true;
      this.ws = undefined;
      clearTimeout(this.silenceTimer);
      fn();
    };

    ws.on('open', () => {
      log('info', 'control connection open', { url });
      this.feed(ws);
      this.opts.events.onOpen();
    });
    ws.on('ping', () => this.feed(ws));
    ws.on('pong', () => this.feed(ws));
    ws.on('message', (data, isBinary) => {
      this.feed(ws);
      // A message we cannot read is dropped; the next delta's seq gap asks for a fresh netmap.
      const text = messageText(data as Buffer, isBinary);
      if (!text.ok) {
        log('warn', 'ignoring malformed control message', { error: text.reason });
        return;
      }
      let json: unknown;
      try {
        json = JSON.parse(text.text);
      } catch {
        log('warn', 'ignoring malformed control message', { error: 'not JSON' });
        return;
      }
      const read = readServerMessage(json);
      if (!read.ok) {
        log('warn', 'ignoring malformed control message', { error: read.reason });
        return;
      }
      this.opts.events.onMessage(read.msg, read.skipped);
    });
    ws.on('unexpected-response', (_req, res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => {
        let problem: Problem | undefined;
        try {
          const parsed = Problem.safeParse(JSON.parse(Buffer.concat(chunks).toString()));
          if (parsed.success) problem = parsed.data;
        } catch { /* not problem+json */ }
        const status = res.statusCode ?? 0;
        const detail = problem ? `: ${problem.detail ?? problem.title}` : '';
        done(() => {
          ws.terminate();
          this.closed(classifyRefusal(status, problem?.code), `server refused connection: HTTP ${status}${problem ? ` ${problem.code}` : ''}${detail}`);
        });
      });
    });
    ws.on('error', (err) => {
      const cert = certificateProblem(serverUrl, err, this.opts.trust);
      if (cert) {
        certError = cert.message;
        log('warn', 'control server certificate refused', { error: cert.message, hint: cert.hint });
        this.opts.events.onCertificateError?.(cert.message, cert.hint);
        return;
      }
      log('debug', 'control socket error', { error: err.message });
    });
    ws.on('close', (code, reason) => {
      done(() => this.closed(classifyClose(code), certError ?? `closed ${code}${reason.length ? ` ${reason.toString()}` : ''}`));
    });
  }

  private closed(kind: Closing, reason: string): void {
    if (this.stopped) return;
    if (kind === 'unauthorized') {
      if (this.unauthorizedStreak++ === 0) {
        this.opts.log('warn', 'control server refused our machine token; retrying once with a fresh one', { reason });
        this.retry(reason);
        return;
      }
      kind = 'revoked';
    }
    if (kind === 'reconnect') {
      this.retry(reason);
      return;
    }
    this.stopped = true;
    this.opts.events.onFinal(kind, reason);
  }

  private retry(reason: string): void {
    if (this.stopped) return;
    const delay = backoffDelay(this.attempt, this.opts.backoff ?? RECONNECT_BACKOFF);
    this.attempt++;
    this.opts.events.onDisconnect(reason, delay);
    this.retryTimer = setTimeout(() => void this.connect(), delay);
  }

  private feed(ws: WebSocket): void {
    clearTimeout(this.silenceTimer);
    this.silenceTimer = setTimeout(() => {
      this.opts.log('warn', 'control connection silent, reconnecting', { silentMs: this.opts.silenceTimeoutMs ?? SILENCE_TIMEOUT_MS });
      ws.terminate();
    }, this.opts.silenceTimeoutMs ?? SILENCE_TIMEOUT_MS);
  }
}
