/**
 * WebSocket fuzz: every agent message type (`AgentMessage` in packages/protocol) generated from its
 * schema and mutated, plus frames that are no message at all, and bad machine tokens at the door.
 * The fuzzer judges each message with its own oracle (strict endpoints: octets 0-255, ports
 * 1-65535), not with the server's schema. Held to: a valid message is taken (endpoints stored and
 * sent to peers, a netcheck verdict sent to peers, resync answered), a bad one closes that socket only and changes nothing stored,
 * /healthz keeps answering, and a bystander agent keeps its session and its deltas.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import { z } from 'zod';
import { generateMachineKey, signMachineToken } from '@weft/crypto';
import { AgentMessage, CloseCode, LinksMessage, MAX_AGENT_MESSAGE_BYTES, MAX_LINKS_PER_NODE } from '@weft/protocol';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { startServer, type TestServer } from '../support/server.js';
import { dbSnapshot, FailureLog, show, snapshotDiff } from './invariants.js';
import { connectObserver, healthy, probeObserver, waitUntil, type Observer } from './observer.js';
import { fuzzSettings, Rng } from './prng.js';
import { hostileValue, isValidEndpoint, mutate, NASTY_CHARS, validValue, type Pools, type Schema } from './values.js';

/** Cases in the normal suite: about 12 s on an idle 2-core machine. */
const SUITE_CASES = 200;
const PROBE_EVERY = 50;
/** How long a bad message may take to close its socket. */
const CLOSE_WITHIN_MS = 2000;

/** Message types and their JSON Schemas, from the wire type itself. */
const BRANCHES: { type: string; schema: Schema }[] = ((z.toJSONSchema(AgentMessage) as { oneOf: Schema[] }).oneOf).map((schema) => ({
  type: String(schema.properties!.type!.const),
  schema,
}));

/** The fuzzer's own verdict on a frame: null = a valid agent message, else why not. */
function badBecause(frame: Frame): string | null {
  if (frame.binary) return 'binary frame';
  if (Buffer.byteLength(frame.text) > MAX_AGENT_MESSAGE_BYTES) return 'larger than MAX_AGENT_MESSAGE_BYTES';
  let msg: unknown;
  try {
    msg = JSON.parse(frame.text);
  } catch {
    return 'not JSON';
  }
  if (typeof msg !== 'object' || msg === null || Array.isArray(msg)) return 'not an object';
  const m = msg as Record<string, unknown>;
  const keys = Object.keys(m).sort().join(',');
  if (m.type === 'resync') return keys === 'type' ? null : `resync with fields ${keys}`;
  if (m.type === 'endpoints') {
    if (keys !== 'endpoints,type') return `endpoints with fields ${keys}`;
    const eps = m.endpoints;
    if (!Array.isArray(eps)) return 'endpoints is not an array';
    if (eps.length > 16) return `${eps.length} endpoints (at most 16)`;
    const bad = eps.find((e) => typeof e !== 'string' || !isValidEndpoint(e));
    return bad === undefined ? null : `bad endpoint ${show(bad, 80)}`;
  }
  if (m.type === 'links') {
    const r = LinksMessage.safeParse(m);
    if (!r.success) return `links: ${r.error.issues[0]?.message ?? 'invalid'}`;
    // The server holds at most MAX_LINKS_PER_NODE links per connection across reports.
    const next = new Set(r.data.full ? [] : linksHeld);
    for (const l of r.data.links) next.add(l.peer);
    for (const id of r.data.removed ?? []) next.delete(id);
    if (next.size > MAX_LINKS_PER_NODE) return `links: more than ${MAX_LINKS_PER_NODE} held`;
    return null;
  }
  if (m.type === 'nat') {
    if (keys !== 'nat,type') return `nat with fields ${keys}`;
    const v = m.nat;
    if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'nat.nat is not an object';
    const n = v as Record<string, unknown>;
    const natKeys = Object.keys(n).sort().join(',');
    if (natKeys !== 'mappingVariesByDestination,udp') return `nat.nat with fields ${natKeys}`;
    if (typeof n.udp !== 'boolean') return 'nat.udp is not a boolean';
    if (n.mappingVariesByDestination !== null && typeof n.mappingVariesByDestination !== 'boolean') return 'nat.mappingVariesByDestination is not a boolean or null';
    return null;
  }
  return `unknown type ${show(m.type, 80)}`;
}

/** The links the server holds for the fuzzed connection (what its valid `links` messages left). */
let linksHeld = new Set<number>();

/** After the server took a valid `links` message: what it holds now. */
function tookLinks(text: string): void {
  const m = LinksMessage.parse(JSON.parse(text));
  const next = new Set(m.full ? [] : linksHeld);
  for (const l of m.links) next.add(l.peer);
  for (const id of m.removed ?? []) next.delete(id);
  linksHeld = next;
}

interface Frame {
  text: string;
  binary: boolean;
  what: string;
}

function frame(rng: Rng, pools: Pools): Frame {
  const branch = rng.pick(BRANCHES);
  const valid = validValue(rng, branch.schema, pools);
  const mode = rng.next();
  if (mode < 0.35) return { text: JSON.stringify(valid), binary: false, what: `valid ${branch.type}` };
  if (mode < 0.85) {
    let v: unknown = valid;
    const what: string[] = [];
    for (let i = rng.int(1, 2); i > 0; i--) {
      const m = mutate(rng, v, branch.schema);
      v = m.value;
      what.push(m.what);
    }
    return { text: JSON.stringify(v) ?? 'undefined', binary: false, what: `${branch.type}: ${what.join('; ')}` };
  }
  const text = JSON.stringify(valid);
  return rng.pick<Frame>([
    { text, binary: true, what: 'valid JSON as a binary frame' },
    { text: text.slice(0, -1), binary: false, what: 'truncated JSON' },
    { text: '', binary: false, what: 'empty frame' },
    { text: JSON.stringify({ type: 'endpoints', endpoints: Array.from({ length: 16 }, (_, i) => `192.0.2.${i + 1}:41641`) }), binary: false, what: 'endpoints: exactly 16' },
    { text: JSON.stringify({ type: 'endpoints', endpoints: [] }), binary: false, what: 'endpoints: none' },
    { text: JSON.stringify({ type: 'endpoints', endpoints: ['1.2.3.4:5'], pad: 'x'.repeat(MAX_AGENT_MESSAGE_BYTES) }), binary: false, what: 'oversize message' },
    { text: ' '.repeat(MAX_AGENT_MESSAGE_BYTES - 20) + '{"type":"resync"}', binary: false, what: 'valid, padded to just under the limit' },
    { text: JSON.stringify({ type: rng.pick(['netmap', 'delta', 'Resync', 'RESYNC', ' resync', 'resync\u0000', '', null, 1]) }), binary: false, what: 'a type agents do not send' },
    { text: '{"type":"resync","type":"endpoints"}', binary: false, what: 'duplicate key' },
    { text: JSON.stringify({ type: 'endpoints', endpoints: [rng.pick(NASTY_CHARS) + '1.2.3.4:5'] }), binary: false, what: 'control character in an endpoint' },
    { text: JSON.stringify(hostileValue(rng)) ?? 'null', binary: false, what: 'hostile JSON value' },
    { text: '\u0000', binary: false, what: 'NUL' },
    { text: JSON.stringify({ type: 'nat', nat: { udp: rng.chance(0.5), mappingVariesByDestination: rng.pick([true, false, null]) } }), binary: false, what: 'nat: a verdict' },
    { text: JSON.stringify({ type: 'nat', nat: { udp: 'true', mappingVariesByDestination: null } }), binary: false, what: 'nat: udp as text' },
    { text: JSON.stringify({ type: 'nat', nat: { udp: true } }), binary: false, what: 'nat: mapping missing' },
  ]);
}

describe('WebSocket fuzz on pglite: every agent message type', () => {
  const { seed, runs } = fuzzSettings(SUITE_CASES);
  let s: TestServer;
  let observer: Observer;
  let agent: SimAgent;
  const pools: Pools = new Map();

  beforeAll(async () => {
    s = await startServer('pglite', { ephemeralTimeoutS: 3600 });
    observer = await connectObserver(s);
    agent = new SimAgent(s.url, 'fuzzed');
    await agent.register(observer.authKey);
    await connect();
    console.log(`WebSocket fuzz: WEFT_FUZZ_SEED=${seed}, ${runs} cases over ${BRANCHES.map((b) => b.type).join(', ')}`);
  });
  afterAll(async () => {
    agent?.close();
    observer?.agent.close();
    await s?.close();
  });

  async function connect(): Promise<void> {
    linksHeld = new Set(); // a new connection holds no links
    const netmaps = agent.received.filter((r) => r.msg.type === 'netmap').length;
    await agent.connect();
    await agent.waitFor(() => agent.received.filter((r) => r.msg.type === 'netmap').length > netmaps, 5000, 'netmap after connecting');
  }

  const storedEndpoints = async () => (await s.state.nodes.get(agent.self!.id)).endpoints;

  /** A bad machine token at the door: refused with 401 before any upgrade, no session, nothing stored. */
  async function badToken(rng: Rng): Promise<{ input: string; problem: string | null }> {
    const m = generateMachineKey().privateKey;
    const good = await signMachineToken(m);
    const token = rng.pick([`${good}x`, 'a.b.c', '', await signMachineToken(m, 3600), await signMachineToken(agent.machine.privateKey, 3600), good.split('.').slice(0, 2).join('.') + '.', 'x'.repeat(3000)]);
    const headers = token ? { authorization: `Bearer ${token}` } : {};
    const input = `GET /agent/v1 (upgrade) headers=${show(headers, 300)}`;
    const problem = await new Promise<string | null>((resolve) => {
      const ws = new WebSocket(`${s.url.replace(/^http/, 'ws')}/agent/v1`, { headers });
      let got = '';
      ws.on('unexpected-response', (_req, res) => {
        res.resume();
        resolve(res.statusCode === 401 ? null : `refused with HTTP ${res.statusCode}, not 401`);
        ws.terminate();
      });
      ws.on('message', (data: Buffer) => (got ||= data.subarray(0, 60).toString()));
      ws.on('close', (code) => resolve(got ? `upgraded and sent ${show(got)} (close ${code})` : `upgraded (101), then closed with ${code}`));
      ws.on('error', () => {});
    });
    return { input, problem };
  }

  it('holds every invariant on generated and mutated messages', async () => {
    const rng = new Rng(seed);
    const tally = new Map<string, number>();
    const log = new FailureLog('WebSocket fuzz', seed, runs, `WEFT_FUZZ_SEED=${seed} WEFT_FUZZ_SCALE=${process.env.WEFT_FUZZ_SCALE ?? 1} npm run fuzz -- apps/server/test/fuzz/socket.test.ts`);
    for (let i = 0; i < runs; i++) {
      const before = await dbSnapshot(s.state.ctx.prisma);
      if (rng.chance(0.05)) {
        const { input, problem } = await badToken(rng);
        if (problem) log.add({ invariant: 'a bad machine token is refused with 401 before the upgrade', target: 'GET /agent/v1', index: i, input, observed: problem });
        const diff = snapshotDiff(before, await dbSnapshot(s.state.ctx.prisma));
        if (diff) log.add({ invariant: 'a refused connection changes nothing stored', target: 'GET /agent/v1', index: i, input, observed: diff });
        continue;
      }
      const f = frame(rng, pools);
      const why = badBecause(f);
      const type = (() => {
        try {
          return `message ${show((JSON.parse(f.text) as { type?: unknown }).type ?? null, 40)}`;
        } catch {
          return 'not JSON';
        }
      })();
      const input = `${f.binary ? 'binary' : 'text'} frame ${show(f.text)} [${f.what}]${why ? ` (bad: ${why})` : ''}`;
      const fail = (invariant: string, observed: string) => log.add({ invariant, target: type, index: i, input, observed });
      const verdict = why === null ? 'valid' : why.startsWith('bad endpoint') ? why : why.replace(/ [\[{"\d-].*/, '');
      tally.set(verdict, (tally.get(verdict) ?? 0) + 1);
      const netmaps = agent.received.filter((r) => r.msg.type === 'netmap').length;
      agent.send(f.binary ? Buffer.from(f.text) : f.text);
      if (why === null) {
        agent.send('{"type":"resync"}');
        try {
          await agent.waitFor(() => agent.received.filter((r) => r.msg.type === 'netmap').length > netmaps || agent.closed !== null, 5000, 'resync answered');
        } catch (err) {
          fail('a valid message is taken and the socket keeps working', (err as Error).message);
        }
        if (agent.closed) fail('a valid message is taken and the socket keeps working', `closed: ${JSON.stringify(agent.closed)}`);
        const msg = JSON.parse(f.text) as { type: string; endpoints?: string[]; nat?: unknown };
        if (msg.type === 'links') tookLinks(f.text);
        if (msg.type === 'nat' && !agent.closed) {
          const want = JSON.stringify(msg.nat);
          try {
            await observer.agent.waitFor(() => JSON.stringify(observer.agent.peers.get(agent.self!.id)?.nat) === want, 3000, 'nat patched into the observer');
          } catch (err) {
            fail('a valid netcheck verdict reaches peers', `${(err as Error).message}; observer has ${show(observer.agent.peers.get(agent.self!.id)?.nat ?? null)}`);
          }
        }
        if (msg.type === 'endpoints' && !agent.closed) {
          const want = JSON.stringify(msg.endpoints);
          try {
            await waitUntil(async () => JSON.stringify(await storedEndpoints()) === want, 'endpoints stored', 3000);
            await observer.agent.waitFor(() => JSON.stringify(observer.agent.peers.get(agent.self!.id)?.endpoints) === want, 3000, 'endpoints patched into the observer');
          } catch (err) {
            fail('valid endpoints are stored and reach peers', `${(err as Error).message}; stored ${show(await storedEndpoints())}`);
          }
        }
      } else {
        try {
          await agent.waitFor(() => agent.closed !== null, CLOSE_WITHIN_MS, 'close');
          const code = agent.closed!.code;
          const want = why === 'larger than MAX_AGENT_MESSAGE_BYTES' ? [CloseCode.TooBig, CloseCode.BadMessage] : [CloseCode.BadMessage];
          if (!want.includes(code as never)) fail('a bad message closes its socket with BadMessage (4400)', `closed with ${code} ${agent.closed!.reason}`);
        } catch {
          fail('a bad message closes its socket', `still open ${CLOSE_WITHIN_MS} ms later; stored endpoints now ${show(await storedEndpoints())}`);
          agent.close();
          await agent.waitFor(() => agent.closed !== null, 5000, 'our own close');
        }
        const diff = snapshotDiff(before, await dbSnapshot(s.state.ctx.prisma));
        if (diff) fail('a bad message changes nothing stored', diff);
      }
      if (agent.closed) await connect();
      if (observer.agent.closed) {
        log.add({ invariant: 'a connected agent keeps its session and gets deltas', target: 'observer', index: i, input, observed: `observer closed: ${JSON.stringify(observer.agent.closed)}` });
        break;
      }
      if (!(await healthy(s.url))) {
        fail('the server keeps answering /healthz', 'no answer after this message');
        break;
      }
      if ((i + 1) % PROBE_EVERY === 0 || i === runs - 1) {
        const probe = await probeObserver(s, observer, i);
        if (probe) {
          log.add({ invariant: 'a connected agent keeps its session and gets deltas', target: 'observer', index: i, input: `after case ${i}: ${input}`, observed: probe });
          break;
        }
      }
    }
    console.log(`WebSocket fuzz: frames by the fuzzer's verdict: ${[...tally].sort((a, b) => b[1] - a[1]).map(([k, n]) => `${k} ${n}`).join(', ')}`);
    expect(log.report()).toBe('');
  });
});
