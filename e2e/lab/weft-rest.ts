/**
 * A small client for the server's REST API (`/api/v1`, `Authorization: Bearer <admin key>`).
 *
 * Transport: a one-shot Node fetch (http-request.mjs) run inside a lab host (`ip netns exec`). The
 * server listens on its LAN address in its own namespace, which the test process (root namespace)
 * cannot reach; giving the server a veth into the root namespace would put lab addresses and routes
 * on the machine running the tests (and clash between concurrent labs). ~50 ms a call; no extra
 * package (curl) for CI to install.
 */
import { fileURLToPath } from 'node:url';
import type { Node, User } from '@weft/protocol';
import type { Host } from './host.js';

const HTTP_REQUEST = fileURLToPath(new URL('./http-request.mjs', import.meta.url));

export interface HttpResult {
  status: number;
  text: string;
  /** The ETag header, null when absent. */
  etag?: string | null;
  /** Date.now() in the requesting process just before the request went out. */
  sentAt?: number;
  /** Date.now() in the requesting process once the whole response was read. */
  receivedAt?: number;
}

/** One HTTP request from inside `via`'s namespace; rejects when no response came back. */
export async function httpFrom(via: Host, method: string, url: string, opts: { body?: string; auth?: string; timeoutMs?: number; headers?: Record<string, string> } = {}): Promise<HttpResult> {
  const timeoutMs = opts.timeoutMs ?? 10_000;
  const r = await via.exec(process.execPath, [HTTP_REQUEST, method, url, String(timeoutMs)], {
    timeoutMs: timeoutMs + 5000,
    input: opts.body ?? '',
    env: { WEFT_LAB_AUTH: opts.auth ?? '', WEFT_LAB_HEADERS: opts.headers ? JSON.stringify(opts.headers) : '' },
  });
  if (r.code !== 0) throw new Error(`${method} ${url} from ${via.name} failed (exit ${r.code}): ${r.stderr.trim()}`);
  return JSON.parse(r.stdout) as HttpResult;
}

export interface RestResponse<T = unknown> {
  status: number;
  /** Parsed JSON, or the raw text when the body is not JSON. */
  body: T;
  etag?: string | null;
  /** Date.now() just before the request went out (in the requesting process; same clock as the test's). */
  sentAt?: number;
  /** Date.now() when the response had been read (same). */
  receivedAt?: number;
}

export class RestError extends Error {
  override name = 'RestError';
  constructor(
    readonly method: string,
    readonly path: string,
    readonly response: RestResponse,
  ) {
    super(`${method} ${path}: HTTP ${response.status} ${typeof response.body === 'string' ? response.body : JSON.stringify(response.body)}`.slice(0, 2000));
  }
}

export class RestClient {
  constructor(
    /** The host the requests are made from. */
    readonly via: Host,
    /** e.g. "http://10.77.0.10:8080". */
    readonly baseUrl: string,
    private readonly apiKey: string,
  ) {}

  /** Any status; see `call` for the throwing form. */
  async request<T = unknown>(method: string, path: string, body?: unknown, opts: { timeoutMs?: number; auth?: boolean; headers?: Record<string, string> } = {}): Promise<RestResponse<T>> {
    const { status, text, etag, sentAt, receivedAt } = await httpFrom(this.via, method, this.baseUrl + path, {
      body: body === undefined ? undefined : JSON.stringify(body),
      auth: opts.auth === false ? undefined : `Bearer ${this.apiKey}`,
      timeoutMs: opts.timeoutMs,
      headers: opts.headers,
    });
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      /* not JSON: keep the text */
    }
    return { status, body: parsed as T, etag, sentAt, receivedAt };
  }

  /** Rejects with `RestError` unless the status is 2xx. */
  async call<T = unknown>(method: string, path: string, body?: unknown): Promise<T> {
    const r = await this.request<T>(method, path, body);
    if (r.status < 200 || r.status > 299) throw new RestError(method, path, r as RestResponse);
    return r.body;
  }

  get = <T = unknown>(path: string) => this.call<T>('GET', path);
  post = <T = unknown>(path: string, body?: unknown) => this.call<T>('POST', path, body ?? {});
  delete = <T = unknown>(path: string) => this.call<T>('DELETE', path);

  async nodes(): Promise<Node[]> {
    return (await this.get<{ items: Node[] }>('/api/v1/nodes')).items;
  }

  async nodeByHostname(hostname: string): Promise<Node | undefined> {
    return (await this.nodes()).find((n) => n.hostname === hostname || n.name === hostname);
  }

  deleteNode(id: number): Promise<Node> {
    return this.delete<Node>(`/api/v1/nodes/${id}`);
  }

  createUser(name: string): Promise<User> {
    return this.post<User>('/api/v1/users', { name });
  }

  deleteUser(name: string): Promise<User> {
    return this.delete<User>(`/api/v1/users/${encodeURIComponent(name)}`);
  }

  /** Returns the secret, shown once. */
  async createAuthKey(body: { user: string; reusable?: boolean; ephemeral?: boolean; tags?: string[]; expiresIn?: number }): Promise<string> {
    return (await this.post<{ key: string }>('/api/v1/authkeys', body)).key;
  }

  /**
   * PUT /api/v1/policy with If-Match on the version in force (read first). Any status: a rejected
   * policy is a 4xx the caller asserts on. `receivedAt` is when the response was in.
   */
  async putPolicy(text: string): Promise<RestResponse<{ version?: number; code?: string; detail?: string }>> {
    const cur = await this.request('GET', '/api/v1/policy');
    if (cur.status !== 200 || !cur.etag) throw new RestError('GET', '/api/v1/policy', cur);
    return this.request('PUT', '/api/v1/policy', { text }, { headers: { 'if-match': cur.etag } });
  }

  /** POST /api/v1/users/:user/suspend|resume|offboard; rejects unless 2xx. `receivedAt` as above. */
  async userOperation(user: string | number, op: 'suspend' | 'resume' | 'offboard'): Promise<RestResponse> {
    const path = `/api/v1/users/${encodeURIComponent(String(user))}/${op}`;
    const r = await this.request('POST', path, {});
    if (r.status < 200 || r.status > 299) throw new RestError('POST', path, r);
    return r;
  }
}
