/**
 * A bystander for the fuzz tier: a real simulated agent connected to the server throughout. After
 * every batch of hostile input it must still hold its session and still get deltas.
 */
import { request } from 'node:http';
import { generateNodeKey } from '@weft/crypto';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import type { TestServer } from '../support/server.js';

export interface Observer {
  agent: SimAgent;
  user: { id: number; name: string };
  nodeId: number;
  authKey: string;
}

export async function connectObserver(s: TestServer): Promise<Observer> {
  const user = (await s.api('POST', '/api/v1/users', { name: 'observer' })).body as { id: number; name: string };
  const authKey = (await s.api('POST', '/api/v1/authkeys', { user: 'observer', reusable: true, expiresIn: 0 })).body.key as string;
  const agent = new SimAgent(s.url, 'observer');
  await agent.register(authKey);
  await agent.connect();
  await agent.waitFor(() => agent.received.some((r) => r.msg.type === 'netmap'), 10_000, 'observer netmap');
  const nodeId = agent.self!.id;
  await waitUntil(async () => (await s.state.nodes.get(nodeId)).online, 'observer marked online');
  return { agent, user, nodeId, authKey };
}

/**
 * Adds a node-less peer and deletes it again through the API; the observer must see both as
 * deltas. Returns what went wrong, or null.
 */
export async function probeObserver(s: TestServer, o: Observer, n: number): Promise<string | null> {
  if (o.agent.closed) return `the observer's socket was closed: ${JSON.stringify(o.agent.closed)}`;
  const created = await bystanderApi(s, 'POST', '/api/v1/nodes', { user: o.user.name, hostname: `probe-${n}`, nodeKey: generateNodeKey().publicKey });
  if (created.status !== 201) return `creating a probe node failed: ${created.status} ${JSON.stringify(created.body)}`;
  const id = created.body.id as number;
  try {
    await o.agent.waitFor(() => o.agent.peers.has(id), 5000, `probe node ${id} upserted`);
    const deleted = await bystanderApi(s, 'DELETE', `/api/v1/nodes/${id}`);
    if (deleted.status !== 200) return `deleting the probe node failed: ${deleted.status} ${JSON.stringify(deleted.body)}`;
    await o.agent.waitFor(() => !o.agent.peers.has(id), 5000, `probe node ${id} removed`);
  } catch (err) {
    return (err as Error).message;
  }
  return o.agent.closed ? `the observer's socket was closed: ${JSON.stringify(o.agent.closed)}` : null;
}

/**
 * An admin request from 127.0.0.2: another client than the fuzzer (127.0.0.1), whose failed key
 * attempts put its own address over the abuse limit (every key attempt from there is then
 * refused, by design) but must not cost anyone else anything.
 */
function bystanderApi(s: TestServer, method: string, path: string, body?: unknown): Promise<{ status: number; body: any }> {
  const payload = body === undefined ? undefined : JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request(s.url + path, {
      method,
      localAddress: '127.0.0.2',
      headers: { authorization: `Bearer ${s.adminKey}`, ...(payload ? { 'content-type': 'application/json' } : {}) },
    }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text ? JSON.parse(text) : undefined }));
    });
    req.on('error', reject);
    req.end(payload);
  });
}

export async function waitUntil(pred: () => Promise<boolean>, what: string, timeoutMs = 5000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await pred())) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** `GET /healthz` answers 200 within two seconds. */
export async function healthy(url: string): Promise<boolean> {
  try {
    const res = await fetch(`${url}/healthz`, { signal: AbortSignal.timeout(2000) });
    return res.status === 200;
  } catch {
    return false;
  }
}
