/**
 * The packet filter on a real network (issue 10, "Enforcement on the node"): real agent daemons
 * with wireguard-go, real nftables and conntrack in each host's namespace. The netmaps come from
 * lab/scripted-control.mjs, which sends the filter a test writes (the server's mapper does not
 * compute filters yet). Tests run in order and build on each other's state.
 */
import { chmodSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { PROTOCOL_VERSION } from '@weft/protocol';
import type { WireFilter } from '../apps/agent/src/firewall/filter.js';
import { requireBinaries } from './lab/preflight.js';
import { useLab } from './lab/vitest.js';
import { REPO, WeftAgent, type AgentStatus } from './lab/weft.js';
import { waitFor } from './lab/wait.js';
import type { LabProcess } from './lab/process.js';

const CONTROL_PORT = 8080;
const ALLOWED = 7001;
const OTHER = 7002;
/** Allowed throughout the connection-cut test. */
const KEPT = 7005;
/** Issue 10: established flows a removed rule allowed stop within 5 s. */
const CUT_WITHIN_MS = 5000;

let controlDir: string;
let failFlag: string;
let a: WeftAgent;
let b: WeftAgent;
let echo: LabProcess;

const script = (name: string) => join(REPO, 'e2e/lab', name);
const A_IP = '100.64.0.1';
const B_IP = '100.64.0.2';

const ctx = useLab({ name: 'fw', hosts: ['server', 'a', 'b'] }, async (lab) => {
  requireBinaries(['nft', 'conntrack']);
  const { server, a: ha, b: hb } = lab.hosts;
  controlDir = server.tmpPath('control');
  mkdirSync(controlDir, { recursive: true });
  const control = server.spawn(process.execPath, [script('scripted-control.mjs'), String(CONTROL_PORT), controlDir, String(PROTOCOL_VERSION), 'a', 'b'], { logName: 'scripted-control', cwd: REPO });
  await control.waitForLine(/listening/, 10_000);

  // `nft` for host a's agent: the real one, unless the test made it fail.
  const bin = ha.tmpPath('bin');
  mkdirSync(bin, { recursive: true });
  failFlag = ha.tmpPath('nft-fails');
  writeFileSync(join(bin, 'nft'), `#!/bin/sh\nif [ -e ${failFlag} ]; then echo "Error: nft made to fail by the lab test" >&2; exit 1; fi\nexec /usr/sbin/nft "$@"\n`);
  chmodSync(join(bin, 'nft'), 0o755);

  [a, b] = await Promise.all([
    WeftAgent.start(ha, { env: { PATH: `${bin}:${process.env.PATH}` } }),
    WeftAgent.start(hb),
  ]);
  const url = `http://${server.ip}:${CONTROL_PORT}`;
  await Promise.all([a.upOk({ server: url, hostname: 'a' }), b.upOk({ server: url, hostname: 'b' })]);
  echo = ha.spawn(process.execPath, [script('tcp-echo.mjs'), String(ALLOWED), String(OTHER), String(KEPT)], { logName: 'tcp-echo' });
  await echo.waitForLine(/listening/, 10_000);
  // A Docker-like neighbour: its own tables, a counter on traffic nothing else sends, a NAT chain.
  await ha.execOk('nft', ['-f', '-'], { input: DOCKERISH });
});

const DOCKERISH = `table ip dockerish {
  counter probes {}
  chain output {
    type filter hook output priority filter; policy accept;
    ip daddr 10.77.0.250 counter name probes
  }
  chain input {
    type filter hook input priority filter; policy accept;
    tcp dport 7999 drop
  }
}
table ip dockerish-nat {
  chain postrouting {
    type nat hook postrouting priority srcnat; policy accept;
    ip saddr 172.17.0.0/16 oifname != "docker0" masquerade
  }
}
`;

function setFilter(host: string, filter: WireFilter | undefined): void {
  const path = join(controlDir, `filter-${host}.json`);
  if (filter === undefined) {
    writeFileSync(path, ''); // unreadable JSON = no filter
    return;
  }
  writeFileSync(`${path}.tmp`, JSON.stringify(filter));
  // rename: the control server never reads half a file
  renameSync(`${path}.tmp`, path);
}

const allowFromB = (ports: string[]): WireFilter => [
  { srcIPs: [B_IP, 'fd7a:115c:a1e0::2'], dstPorts: ports.map((p) => ({ ip: A_IP, ports: p })), protos: [6] },
  { srcIPs: [B_IP], dstPorts: [{ ip: A_IP, ports: '*' }], protos: [1] },
];

async function probe(port: number, timeoutMs = 1500): Promise<boolean> {
  const r = await ctx.lab.hosts.b.exec(process.execPath, [script('tcp-probe.mjs'), A_IP, String(port), String(timeoutMs)], { timeoutMs: timeoutMs + 5000 });
  return r.code === 0;
}

async function firewallOf(agent: WeftAgent): Promise<AgentStatus['firewall']> {
  return (await agent.status()).firewall;
}

async function weftTable(): Promise<string> {
  return (await ctx.lab.hosts.a.execOk('nft', ['list', 'table', 'inet', 'weft'])).stdout;
}

describe('packet filter (nftables)', () => {
  it('without a filter, every port is reachable over the tunnel (as before policies) and no table of Weft exists', async () => {
    await waitFor(async () => (await ctx.lab.hosts.b.ping(A_IP, { count: 1, timeoutMs: 2000 })).ok, { timeoutMs: 20_000, intervalMs: 200, what: 'b pings a over the tunnel' });
    expect(await probe(ALLOWED)).toBe(true);
    expect(await probe(OTHER)).toBe(true);
    expect((await firewallOf(a)).state).toBe('off');
    const r = await ctx.lab.hosts.a.exec('nft', ['list', 'table', 'inet', 'weft']);
    expect(r.code).not.toBe(0);
  });

  let dockerBefore = '';
  it('a port the filter allows is reachable over the tunnel and one it does not allow is not', async () => {
    dockerBefore = (await ctx.lab.hosts.a.execOk('nft', ['list', 'table', 'ip', 'dockerish'])).stdout
      + (await ctx.lab.hosts.a.execOk('nft', ['list', 'table', 'ip', 'dockerish-nat'])).stdout;
    setFilter('a', allowFromB([String(ALLOWED)]));
    await waitFor(async () => (await firewallOf(a)).state === 'enforcing', { timeoutMs: 10_000, intervalMs: 100, what: 'a enforces the filter' });
    expect(await probe(ALLOWED)).toBe(true);
    expect(await probe(OTHER)).toBe(false);
    // ICMP is allowed by rule 1; a's own connections out to b still get their replies.
    expect((await ctx.lab.hosts.b.ping(A_IP, { count: 1, timeoutMs: 2000 })).ok).toBe(true);
    const toB = await ctx.lab.hosts.a.exec(process.execPath, [script('tcp-probe.mjs'), B_IP, '7009', '1500']);
    expect(toB.stdout).toMatch(/error ECONNREFUSED/); // b answered (RST): the reply came back in
    expect(await weftTable()).toContain(`iifname "${a.iface}" jump tunnel_in`);
  });

  it('another tool\'s tables in the same namespace are untouched by every apply and keep working', async () => {
    setFilter('a', allowFromB([String(ALLOWED), '7100-7200']));
    await waitFor(async () => (await weftTable()).includes('7100-7200'), { timeoutMs: 10_000, intervalMs: 100, what: 'the second filter in force' });
    const after = (await ctx.lab.hosts.a.execOk('nft', ['list', 'table', 'ip', 'dockerish'])).stdout
      + (await ctx.lab.hosts.a.execOk('nft', ['list', 'table', 'ip', 'dockerish-nat'])).stdout;
    expect(after).toBe(dockerBefore); // rules and counters, byte for byte
    // Still evaluated: its counter counts, and its drop still drops a port Weft's filter allows.
    await ctx.lab.hosts.a.exec('ping', ['-c', '1', '-W', '1', '10.77.0.250']);
    expect((await ctx.lab.hosts.a.execOk('nft', ['list', 'counter', 'ip', 'dockerish', 'probes'])).stdout).toMatch(/packets 1 /);
    setFilter('a', allowFromB([String(ALLOWED), '7999']));
    await waitFor(async () => (await weftTable()).includes('7999'), { timeoutMs: 10_000, intervalMs: 100, what: 'filter allowing 7999' });
    expect(await probe(7999)).toBe(false);
  });

  it('a removed rule cuts an already-open TCP connection within 5 s; one the filter still allows carries on', async () => {
    setFilter('a', allowFromB([String(ALLOWED), String(KEPT)]));
    await waitFor(async () => (await weftTable()).includes(`dport { ${ALLOWED}, ${KEPT} }`), { timeoutMs: 10_000, intervalMs: 100, what: 'filter allowing both stream ports' });
    const spawnStream = (port: number) => ctx.lab.hosts.b.spawn(process.execPath, [script('tcp-stream.mjs'), A_IP, String(port)], { logName: `tcp-stream-${port}` });
    const cut = spawnStream(ALLOWED);
    const kept = spawnStream(KEPT);
    const echoes = (p: LabProcess) => p.lines().filter((l) => l.startsWith('echo ')).map((l) => Number(l.split(' ')[2]));
    try {
      await Promise.all([cut.waitForLine(/^echo 10 /, 10_000), kept.waitForLine(/^echo 10 /, 10_000)]);
      const removedAt = Date.now();
      setFilter('a', allowFromB([String(OTHER), String(KEPT)]));
      await waitFor(async () => (await weftTable()).includes(`dport { ${OTHER}, ${KEPT} }`), { timeoutMs: CUT_WITHIN_MS, intervalMs: 50, what: 'the filter without the first stream\'s port' });
      // Quiet for 2 s = cut; its last echo must be within 5 s of the change.
      let lastEcho = 0;
      await waitFor(async () => {
        lastEcho = echoes(cut).at(-1)!;
        return Date.now() - lastEcho > 2000;
      }, { timeoutMs: CUT_WITHIN_MS + 5000, intervalMs: 100, what: 'the open connection stops carrying data' });
      console.info(`open TCP connection carried its last echo ${lastEcho - removedAt} ms after the rule was removed`);
      expect(lastEcho - removedAt).toBeLessThan(CUT_WITHIN_MS);
      // The other connection, still allowed, was never interrupted: echoes all along, to now.
      const keptAfter = echoes(kept).filter((t) => t > removedAt);
      expect(keptAfter.length).toBeGreaterThanOrEqual(15);
      expect(Date.now() - keptAfter.at(-1)!).toBeLessThan(1000);
      // Its conntrack entry was deleted (the retransmits that still come in are new, and dropped).
      const ct = await ctx.lab.hosts.a.execOk('conntrack', ['-L', '-f', 'ipv4', '-p', 'tcp', '--orig-dst', A_IP]);
      expect(ct.stdout).not.toMatch(new RegExp(`ESTABLISHED .*dport=${ALLOWED} `));
      expect(ct.stdout).toMatch(new RegExp(`ESTABLISHED .*dport=${KEPT} `));
      expect(await probe(OTHER)).toBe(true);
      expect(await probe(ALLOWED)).toBe(false);
    } finally {
      await Promise.all([cut.kill(), kept.kill()]);
    }
  });

  it('a failing transaction leaves the previous ruleset in force and weft status says so', async () => {
    const before = await weftTable();
    writeFileSync(failFlag, '');
    try {
      setFilter('a', allowFromB([String(ALLOWED), String(OTHER)]));
      await waitFor(async () => (await firewallOf(a)).state === 'kept', { timeoutMs: 10_000, intervalMs: 100, what: 'a reports the failed transaction' });
      const fw = await firewallOf(a);
      expect(fw.error).toMatch(/nft made to fail by the lab test.*the previous ruleset stays in force/);
      expect(await weftTable()).toBe(before);
      expect(await probe(OTHER)).toBe(true);
      expect(await probe(ALLOWED)).toBe(false); // the new filter is not in force
      const human = await a.cli(['status', '--socket', a.socket]);
      expect(human.stdout).toContain('firewall: NOT UPDATED: cannot apply the new packet filter (nft failed: Error: nft made to fail by the lab test); the previous ruleset stays in force');
    } finally {
      rmSync(failFlag, { force: true });
    }
    // The agent tries again by itself (backoff) and gets there once nft works.
    await waitFor(async () => (await firewallOf(a)).state === 'enforcing', { timeoutMs: 20_000, intervalMs: 200, what: 'a applies the filter once nft works again' });
    expect(await probe(ALLOWED)).toBe(true);
  });

  it('a filter that cannot be put in force with none in place fails closed: no peers in WireGuard, and status says why', async () => {
    await a.stop(); // graceful: the daemon removes its table with the interface
    writeFileSync(failFlag, '');
    try {
      await a.startAgain();
      await waitFor(async () => (await firewallOf(a)).state === 'blocked', { timeoutMs: 20_000, intervalMs: 200, what: 'a restarted with nft failing reports blocked' });
      expect((await a.wgDump())?.peers ?? []).toEqual([]);
      expect(await probe(ALLOWED, 1000)).toBe(false);
      const human = await a.cli(['status', '--socket', a.socket]);
      expect(human.stdout).toContain('firewall: BLOCKING ALL TUNNEL TRAFFIC: cannot enforce the packet filter (nft failed: Error: nft made to fail by the lab test); no peers are configured until it can be');
    } finally {
      rmSync(failFlag, { force: true });
    }
    await waitFor(async () => (await firewallOf(a)).state === 'enforcing', { timeoutMs: 30_000, intervalMs: 200, what: 'a enforces once nft works' });
    await waitFor(() => probe(ALLOWED), { timeoutMs: 10_000, intervalMs: 200, what: 'b reaches the allowed port again' });
  });
});
