/**
 * The lab harness itself: LAN connectivity, process handling, a hand-configured wireguard-go pair,
 * and cleanup that leaves no namespace and no process behind, also after a failing test, SIGTERM
 * and SIGKILL.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { Lab, LabPrerequisiteError, execIn, listNamespaces, nsPrefix, parsePing, pidAlive, preflight, startWgPair, waitFor } from './lab/index.js';
import { WeftAgent, parseWgDump } from './lab/weft.js';
import { median, percentile } from '../bench/lib/stats.js';
import type { LabDescription } from './lab/fixtures/describe.js';
import { uapiSocket } from './lab/wg-pair.js';
import { useLab } from './lab/vitest.js';

const repo = fileURLToPath(new URL('..', import.meta.url));
const scratch = mkdtempSync(join(tmpdir(), 'weft-labtest-'));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

const ctx = useLab({ name: 'lt', hosts: ['a', 'b'] });

/** Nothing of `d` is left: no namespace, no process, no temp dir. */
async function expectGone(d: LabDescription): Promise<void> {
  const left = await listNamespaces();
  expect(left.filter((n) => d.namespaces.includes(n))).toEqual([]);
  await waitFor(() => d.pids.every((p) => !pidAlive(p)), { timeoutMs: 5000, what: 'lab pids to exit' });
  expect(d.pids.filter(pidAlive)).toEqual([]);
  expect(existsSync(d.tmpDir)).toBe(false);
}

describe('parsers', () => {
  it('read ping summaries, wg dumps and percentiles', () => {
    expect(parsePing('3 packets transmitted, 2 received, 33% packet loss, time 402ms\nrtt min/avg/max/mdev = 0.05/0.07/0.09/0.01 ms')).toMatchObject({
      ok: true, sent: 3, received: 2, lossPct: 33, avgRttMs: 0.07,
    });
    expect(parsePing('connect: Network is unreachable')).toMatchObject({ ok: false, sent: 0, lossPct: 100, avgRttMs: null });
    const dump = parseWgDump('priv\tPUB=\t41641\toff\npeerA=\t(none)\t10.77.0.11:41641\t100.64.0.2/32,fd7a::2/128\t1795323228\t92\t180\toff\npeerB=\t(none)\t(none)\t(none)\t0\t0\t0\toff\n');
    expect(dump).toEqual({
      publicKey: 'PUB=', listenPort: 41641,
      peers: [
        { publicKey: 'peerA=', endpoint: '10.77.0.11:41641', allowedIps: ['100.64.0.2/32', 'fd7a::2/128'], latestHandshake: 1795323228, rxBytes: 92, txBytes: 180 },
        { publicKey: 'peerB=', endpoint: null, allowedIps: [], latestHandshake: 0, rxBytes: 0, txBytes: 0 },
      ],
    });
    const xs = Array.from({ length: 20 }, (_, i) => 20 - i); // 20..1
    expect(median(xs)).toBe(10.5);
    expect(percentile(xs, 95)).toBe(19);
    expect(percentile([7], 95)).toBe(7);
  });
});

describe('preflight', () => {
  it('fails loudly, naming the packages to install, when a binary is missing', () => {
    const path = process.env.PATH;
    process.env.PATH = '/nonexistent';
    try {
      expect(() => preflight()).toThrow(LabPrerequisiteError);
      expect(() => preflight()).toThrow(/apt-get install -y iproute2 iputils-ping util-linux wireguard-go wireguard-tools/);
    } finally {
      process.env.PATH = path;
    }
    expect(() => preflight()).not.toThrow();
  });
});

describe('hosts', () => {
  it('ping each other over the LAN, and not an address nobody has', async () => {
    const { a, b } = ctx.lab.hosts;
    expect(a.ip).not.toBe(b.ip);
    expect((await a.ping(b.ip, { count: 3, intervalMs: 50 })).received).toBe(3);
    expect((await b.ping(a.ip)).ok).toBe(true);
    const nobody = await a.ping('10.77.0.250', { count: 1, timeoutMs: 1000 });
    expect(nobody).toMatchObject({ ok: false, received: 0, lossPct: 100 });
  });

  it('are separate namespaces: the root namespace has no lab address', async () => {
    const root = await execIn(null, 'ip', ['-o', 'addr']);
    expect(root.stdout).not.toContain(ctx.lab.hosts.a.ip + '/');
    const inA = await ctx.lab.hosts.a.execOk('ip', ['-o', 'addr', 'show', 'dev', 'eth0']);
    expect(inA.stdout).toContain(`${ctx.lab.hosts.a.ip}/24`);
  });

  it('exec reports exit code and output, and a timeout kills the command', async () => {
    const r = await ctx.lab.hosts.a.exec('sh', ['-c', 'cat; echo err >&2; exit 3'], { input: 'hello' });
    expect(r).toMatchObject({ code: 3, stdout: 'hello', stderr: 'err\n', timedOut: false });
    const t = await ctx.lab.hosts.a.exec('sh', ['-c', 'sleep 30'], { timeoutMs: 300 });
    expect(t.timedOut).toBe(true);
    expect(t.durationMs).toBeLessThan(5000);
    await expect(ctx.lab.hosts.a.execOk('false')).rejects.toThrow(/false: exited 1/);
  });

  it('spawn logs to a file, waitForLine finds lines, kill stops the group', async () => {
    const p = ctx.lab.hosts.b.spawn('sh', ['-c', 'echo starting; sleep 0.2; echo "ready on port 1234" >&2; sleep 300'], { logName: 'demo' });
    const m = await p.waitForLine(/ready on port (\d+)/, 5000);
    expect(m.match[1]).toBe('1234');
    await expect(p.waitForLine(/never printed/, 200)).rejects.toThrow(/no line matching/);
    const st = await p.kill();
    expect(st.signal).toBe('SIGTERM');
    expect(pidAlive(p.pid)).toBe(false);
    expect(readFileSync(p.logPath, 'utf8')).toMatch(/starting\n[\s\S]*ready on port 1234/);
    await expect(p.waitForLine(/never printed/, 1000)).rejects.toThrow(/exited/);
  });
});

describe('hand-configured wireguard-go pair', () => {
  it('pings over its tunnel addresses, and wg show sees the handshake', async () => {
    const { a, b } = ctx.lab.hosts;
    const pair = await startWgPair(a, b);
    expect(pair.a.ifname).not.toBe(pair.b.ifname);
    const r = await a.ping(pair.b.tunnelIp, { count: 3, intervalMs: 100, timeoutMs: 5000 });
    expect(r.received).toBeGreaterThan(0);
    expect((await b.ping(pair.a.tunnelIp)).ok).toBe(true);
    const dump = await b.execOk('wg', ['show', pair.b.ifname, 'dump']);
    const peer = dump.stdout.trim().split('\n')[1]!.split('\t');
    expect(peer[0]).toBe(pair.a.publicKey);
    expect(Number(peer[4])).toBeGreaterThan(0); // latest handshake, unix seconds
    await pair.close();
    expect(existsSync(uapiSocket(pair.a.ifname))).toBe(false);
    expect((await a.ping(pair.b.tunnelIp, { timeoutMs: 1000 })).ok).toBe(false);
  });
});

describe('weft helpers', () => {
  it('start an agent daemon in a host; weft status --json answers before login', async () => {
    const agent = await WeftAgent.start(ctx.lab.hosts.b);
    const st = await agent.status();
    expect(st).toMatchObject({ state: 'needs-login', self: null, interface: { name: agent.iface } });
    expect(agent.iface).toBe('wftltb');
    expect(await agent.wgDump()).toBeNull(); // no interface until it joins
    await agent.stop();
    expect(agent.process.running).toBe(false);
  });
});

describe('cleanup', () => {
  it('leaves no namespace, process or temp dir behind', async () => {
    const lab = await Lab.create({ name: 'lc', hosts: ['x', 'y'] });
    const out = join(scratch, 'lc.json');
    const { describeLab } = await import('./lab/fixtures/describe.js');
    const d = await describeLab(lab, out);
    const pair = await startWgPair(lab.hosts.x, lab.hosts.y);
    d.pids.push(pair.a.process.pid, pair.b.process.pid);
    expect((await listNamespaces()).filter((n) => n.startsWith(nsPrefix('lc'))).sort()).toEqual([...d.namespaces].sort());

    const report = await lab.cleanup();
    expect(report.strays.length).toBeGreaterThan(0); // the setsid'd sleep
    await expectGone(d);
    expect(existsSync(uapiSocket(pair.a.ifname))).toBe(false);
    await expect(lab.cleanup()).resolves.toMatchObject({ namespaces: [] }); // idempotent
    expect(() => lab.hosts.x.spawn('true')).toThrow(/cleaned up/);
  });

  it('after a test body fails: the failure shows the process logs and nothing is left', async () => {
    const out = join(scratch, 'lf.json');
    const child = await runChild('npx', ['vitest', 'run', '--config', 'e2e/lab/fixtures/vitest.fixture.config.ts'], out, 90_000);
    expect(child.code).not.toBe(0);
    expect(child.output).toContain('simulated failure');
    expect(child.output).toContain('fixture-log-line-for-the-tail'); // the tail printed on failure
    await expectGone(JSON.parse(readFileSync(out, 'utf8')) as LabDescription);
  });

  it('after SIGTERM: the signal hook removes everything', async () => {
    const out = join(scratch, 'ls.json');
    const child = await runChild('node', ['--import', 'tsx', 'e2e/lab/fixtures/hold-lab.ts', 'ls'], out, 30_000, 'SIGTERM');
    expect(child.signal ?? child.code).toBeTruthy();
    await expectGone(JSON.parse(readFileSync(out, 'utf8')) as LabDescription);
  });

  it('after SIGKILL: the next Lab.create with the same name sweeps the leftovers', async () => {
    const out = join(scratch, 'lk.json');
    await runChild('node', ['--import', 'tsx', 'e2e/lab/fixtures/hold-lab.ts', 'lk'], out, 30_000, 'SIGKILL');
    const d = JSON.parse(readFileSync(out, 'utf8')) as LabDescription;
    // Nothing ran the hooks: the namespaces and the processes in them are still there.
    expect((await listNamespaces()).filter((n) => d.namespaces.includes(n)).length).toBe(d.namespaces.length);
    expect(d.pids.some(pidAlive)).toBe(true);

    const next = await Lab.create({ name: 'lk', hosts: ['a'] });
    try {
      // A stale namespace for a host the new lab does not have is gone too.
      expect((await listNamespaces()).filter((n) => n.startsWith(nsPrefix('lk'))).sort()).toEqual(next.namespaces().sort());
      await waitFor(() => d.pids.every((p) => !pidAlive(p)), { timeoutMs: 5000, what: 'stale pids to exit' });
      expect(existsSync(d.tmpDir)).toBe(false);
    } finally {
      await next.cleanup();
    }
    await expectGone({ ...d, namespaces: next.namespaces() });
  });
});

/**
 * Runs a fixture in a child process until it exits, or, with `signal`, until it wrote its
 * description and printed READY, then signals it and waits for the exit.
 */
async function runChild(cmd: string, args: string[], out: string, timeoutMs: number, signal?: NodeJS.Signals) {
  const child = spawn(cmd, args, { cwd: repo, env: { ...process.env, WEFT_FIXTURE_OUT: out }, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (b: Buffer) => (output += b.toString()));
  child.stderr.on('data', (b: Buffer) => (output += b.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, sig) => resolve({ code, signal: sig })),
  );
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  try {
    if (signal) {
      await waitFor(() => output.includes('READY') || exitedNow(), { timeoutMs, what: `${args.join(' ')} to print READY` });
      child.kill(signal);
    }
    const st = await exited;
    return { ...st, output };
  } finally {
    clearTimeout(timer);
  }
  function exitedNow(): boolean {
    if (child.exitCode !== null || child.signalCode !== null) throw new Error(`fixture exited early:\n${output}`);
    return false;
  }
}
