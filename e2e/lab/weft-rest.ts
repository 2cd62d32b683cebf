/**
 * A small client for the server's REST API (`/api/v1`, `Authorization: Bearer <admin key>`).
 *
 * Transport: curl run inside a lab host (`ip netns exec`). The server listens on its LAN address in
 * its own namespace, which the test process (root namespace) cannot reach, and giving the server a
 * veth into the root namespace would put lab addresses and routes on the machine running the tests
 * (and clash between concurrent labs). curl costs ~10 ms a call, which no test here notices.
 */
import type { Node, User } from '@weft/protocol';
import type { Host } from './host.js';

export interface RestResponse<T = unknown> {
  status: number;
  /** Parsed JSON, or the raw text when the body is not JSON. */
  body: T;
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
    /** The host curl runs in. */
    readonly via: Host,
    /** e.g. "http://10.77.0.10:8080". */
    readonly baseUrl: string,
    private readonly apiKey: string,
  ) {}

  /** Any status; see `call` for the throwing form. */
  async request<T = unknown>(method: string, path: string, body?: unknown, opts: { timeoutMs?: number; auth?: boolean } = {}): Promise<RestResponse<T>> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const args = ['-sS', '-X', method, '--max-time', String(timeoutMs / 1000), '-w', '\n%{http_code}'];
    if (opts.auth !== false) args.push('-H', `Authorization: Bearer ${this.apiKey}`);
    if (body !== undefined) args.push('-H', 'content-type: application/json', '--data-binary', '@-');
    args.push(this.baseUrl + path);
    const r = await this.via.exec('curl', args, { timeoutMs: timeoutMs + 5000, input: body === undefined ? '' : JSON.stringify(body) });
    const nl = r.stdout.lastIndexOf('\n');
    const status = Number(r.stdout.slice(nl + 1));
    if (r.code !== 0 || !Number.isInteger(status) || status === 0) {
      throw new Error(`curl ${method} ${this.baseUrl}${path} from ${this.via.name} failed (exit ${r.code}): ${r.stderr.trim()}`);
    }
    const text = r.stdout.slice(0, nl);
    let parsed: unknown = text;
    try {
      parsed = text === '' ? null : JSON.parse(text);
    } catch {
      /* not JSON: keep the text */
    }
    return { status, body: parsed as T };
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
}
