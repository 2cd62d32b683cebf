/**
 * Latency-based home relay with hysteresis, on a real network: two standalone relay regions (real
 * `weft-relay`s on hosts `one` and `two`, linked to one weft-server) whose STUN ports the netmap
 * lists behind a user-space delay forwarder on host `delay` (e2e/lab/udp-delay.mjs: this kernel
 * has no netem qdisc, so the forwarder holds each request for its region's delay). A real agent
 * measures the regions in its netchecks and homes by home-relay.ts's rule (another region must be
 * better by 10 ms and by 20 % of the home's latency, two netchecks in a row):
 * - one 40 ms, two 5 ms: it homes on two;
 * - one 10 ms, two 12 ms (one better, inside the margins): it stays on two;
 * - one 10 ms, two 40 ms: it moves to one, and not on the first netcheck that sees it (the
 *   forwarder counts the requests, so a background netcheck falling in is told apart).
 * The forwarder gives every client one upstream port for both regions (an endpoint-independent
 * mapping), so the agent's public address is the forwarder's: this lab tests homing, not paths.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import type { LabProcess } from './lab/process.js';
import { useLab } from './lab/vitest.js';
import { waitFor } from './lab/wait.js';
import { RELAY_BIN, REPO, SERVER_BIN, WeftAgent, WeftServer } from './lab/weft.js';
import { NETCHECK_PROBES } from '../apps/agent/src/tunables.js';

const DELAY_BIN = fileURLToPath(new URL('./lab/udp-delay.mjs', import.meta.url));
const RELAY_PORT = 8443;
const PORTS = { one: 3478, two: 3479 } as const;
type Code = keyof typeof PORTS;

let agent: WeftAgent;
let forwarder: LabProcess;
let delayConfig: string;
let regionHosts: Record<Code, string>;

/** Sets the regions' delays and waits until the forwarder applies them. */
async function setDelays(delays: Record<Code, number>): Promise<void> {
  writeFileSync(delayConfig, JSON.stringify({
    routes: (Object.keys(PORTS) as Code[]).map((code) => ({ name: code, listen: PORTS[code], to: `${regionHosts[code]}:3478`, delayMs: delays[code] })),
  }));
  if (!forwarder) return;
  const from = forwarder.lines().length;
  process.kill(forwarder.pid, 'SIGHUP');
  await forwarder.waitForLine(new RegExp(`^delays one=${delays.one} two=${delays.two}$`), 5000, from);
}

/** Datagrams the forwarder has received for each region so far. */
async function received(): Promise<Record<Code, number>> {
  const from = forwarder.lines().length;
  process.kill(forwarder.pid, 'SIGUSR2');
  const { match } = await forwarder.waitForLine(/^received one=(\d+) two=(\d+)$/, 5000, from);
  return { one: Number(match[1]), two: Number(match[2]) };
}

/** One netcheck through the daemon (which feeds its home choice): the measured latencies and the home after it. */
async function netcheck(): Promise<{ one: number; two: number; home: string | undefined }> {
  const { report } = await agent.netcheck();
  const ms = (code: Code) => report.regions.find((r) => r.code === code)?.latencyMs ?? NaN;
  return { one: ms('one'), two: ms('two'), home: report.homeRegion?.code };
}

useLab({ name: 'hom', hosts: ['server', 'one', 'two', 'delay', 'x'] }, async (lab) => {
  const { server: sh, one, two, delay } = lab.hosts;
  regionHosts = { one: one.ip, two: two.ip };
  delayConfig = delay.tmpPath('delays.json');
  await setDelays({ one: 40, two: 5 });
  forwarder = delay.spawn(process.execPath, [DELAY_BIN, delayConfig], { logName: 'udp-delay' });
  await forwarder.waitForLine(/^delays one=40 two=5$/, 10_000);

  const config = sh.tmpPath('server-config.json');
  const region = (id: number, code: Code) => ({ id, code, name: `region ${code}`, stun: [`${delay.ip}:${PORTS[code]}`], relayUrl: `http://${lab.hosts[code].ip}:${RELAY_PORT}` });
  writeFileSync(config, JSON.stringify({ regions: [region(2, 'one'), region(3, 'two')] }));
  const server = await WeftServer.start(lab, { env: { WEFT_CONFIG: config }, readyTimeoutMs: 120_000 });
  const secretFile = sh.tmpPath('mesh.secret');
  await sh.execOk(process.execPath, [SERVER_BIN, 'relay-secret', '--out', secretFile, '--data-dir', server.dataDir], { timeoutMs: 60_000, cwd: REPO });
  for (const code of ['one', 'two'] as const) {
    const p = lab.hosts[code].spawn(process.execPath, [RELAY_BIN, '--server', server.url, '--mesh-secret-file', secretFile, '--listen', `0.0.0.0:${RELAY_PORT}`, '--stun-listen', '0.0.0.0:3478', '--name', `region-${code}`], { logName: 'weft-relay' });
    await p.waitForLine(/linked to the control server/, 60_000);
  }
  agent = await WeftAgent.start(lab.hosts.x);
  await agent.upOk({ server: server.url, authKey: await server.authKey('ops'), hostname: 'x' });
});

describe('home relay by latency, with hysteresis (lab, delays from a forwarder)', () => {
  it('homes on the near region (two, 5 ms) over the far one (one, 40 ms), and its relay session is there', async () => {
    await waitFor(async () => (await netcheck()).home === 'two', { timeoutMs: 60_000, intervalMs: 250, what: 'x homed on region two' });
    const n = await netcheck();
    // Node's timers may fire a millisecond early.
    expect(n.one, `latencies ${JSON.stringify(n)}`).toBeGreaterThanOrEqual(38);
    expect(n.two, `latencies ${JSON.stringify(n)}`).toBeLessThan(40);
    await waitFor(async () => {
      const st = await agent.status();
      return st.relay?.connected === true && st.relay.region === 'two';
    }, { timeoutMs: 30_000, intervalMs: 250, what: "x's relay session on region two" });
  });

  it('stays on two when one becomes a little better (10 ms against 12 ms: inside the margins)', async () => {
    await setDelays({ one: 10, two: 12 });
    const seen: Awaited<ReturnType<typeof netcheck>>[] = [];
    for (let i = 0; i < 5; i++) seen.push(await netcheck());
    // The netchecks saw one ahead (by the median), and the home did not follow.
    const leads = seen.map((n) => n.two - n.one).sort((a, b) => a - b);
    expect(leads[2], JSON.stringify(seen)).toBeGreaterThan(0);
    expect(seen.map((n) => n.home), JSON.stringify(seen)).toEqual(['two', 'two', 'two', 'two', 'two']);
    expect((await agent.status()).relay?.region).toBe('two');
  });

  it('moves to one when two falls far behind (40 ms against 10 ms), after two netchecks agree, and its relay session follows', async () => {
    await setDelays({ one: 10, two: 40 });
    const before = await received();
    const first = await netcheck();
    expect(first.two - first.one, JSON.stringify(first)).toBeGreaterThanOrEqual(10);
    // One netcheck is not enough to move. The daemon's own netcheck (every 60 s) may have fallen in
    // since the change: a move now needs its requests to region two as well (the median of 3 is
    // the new delay once 2 of them came after the change).
    const others = (await received()).two - before.two - NETCHECK_PROBES;
    expect(first.home === 'two' || others >= 2, `moved after one netcheck (${others} requests from others): ${JSON.stringify(first)}`).toBe(true);
    await waitFor(async () => (await netcheck()).home === 'one', { timeoutMs: 30_000, intervalMs: 250, what: 'x homed on region one' });
    await waitFor(async () => {
      const st = await agent.status();
      return st.relay?.connected === true && st.relay.region === 'one';
    }, { timeoutMs: 30_000, intervalMs: 250, what: "x's relay session on region one" });
  });
});
