/** The local control socket: permissions, one daemon per socket, the NDJSON join stream, the CLI client. */
import { execFile } from 'node:child_process';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { createServer as createNetServer } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import type { Server } from 'node:http';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent.js';
import { LocalClient } from '../../src/cli/local-client.js';
import { ExitCode } from '../../src/cli/exit-codes.js';
import { createLocalApi, listenLocal } from '../../src/local-api.js';
import { silentLogger } from '../../src/log.js';
import { StateStore } from '../../src/state-store.js';
import type { Status } from '../../src/status.js';
import { FakeControl, problem } from './fake-control.js';
import { FakeDevice } from './fake-device.js';
import { noFirewall, peer, self } from './fixtures.js';

const BIN = new URL('../../bin/weft.mjs', import.meta.url).pathname;

describe('local API', () => {
  let dir: string;
  let control: FakeControl;
  let agent: Agent;
  let api: Server;
  let socket: string;
  let device: FakeDevice | undefined;

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'weft-api-'));
    control = new FakeControl();
    await control.start();
    control.onRegister = () => ({ status: 200, body: { status: 'registered', node: self } });
    control.onConnect = (ws) => ws.send(JSON.stringify({ type: 'netmap', seq: 1, protocolVersion: 1, self, peers: [peer(2)] }));
    agent = new Agent({
      store: new StateStore(join(dir, 'state')), openDevice: () => (device = new FakeDevice()), interfaceName: 'weft0', backend: 'userspace',
      listenPort: 41641, mtu: 1280, log: silentLogger, loginPollMs: 20, hostname: () => 'h', firewallRunner: noFirewall,
    });
    await agent.start();
    api = createLocalApi(agent, silentLogger);
    socket = join(dir, 'run', 'weftd.sock');
    await listenLocal(api, socket);
  });
  afterEach(async () => {
    await agent.shutdown();
    api.closeAllConnections();
    await new Promise((r) => api.close(r));
    await control.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('the socket is 0600 and a second daemon on it is refused', async () => {
    expect((await stat(socket)).mode & 0o777).toBe(0o600);
    const other = createLocalApi(agent, silentLogger);
    await expect(listenLocal(other, socket)).rejects.toThrow(/already listening/);
  });

  it('a stale socket file from a crashed daemon is replaced', async () => {
    const stale = join(dir, 'stale.sock');
    const s = createNetServer();
    await new Promise<void>((r) => s.listen(stale, r));
    // Simulate a crash: the file stays, nothing listens.
    await new Promise((r) => { s.close(r); });
    await writeFile(stale, '');
    const api2 = createLocalApi(agent, silentLogger);
    await listenLocal(api2, stale);
    await new Promise((r) => api2.close(r));
  });

  it('streams the join and answers status, down and logout', async () => {
    const client = new LocalClient(socket);
    const events: Record<string, unknown>[] = [];
    await client.stream('/v1/up', { server: control.url, authKey: 'k' }, (e) => events.push(e));
    expect(events.map((e) => e.type)).toEqual(['registered', 'up']);
    expect((events[1]!.status as Status).peers.map((p) => p.name)).toEqual(['peer2']);
    expect((await client.call<Status>('GET', '/v1/status')).state).toBe('running');
    expect((await client.call<Status>('POST', '/v1/down', {})).state).toBe('stopped');
    expect(await client.call('POST', '/v1/logout', {})).toMatchObject({ serverNotified: true, serverError: null, status: { state: 'needs-login' } });
  });

  it('a refused join ends the stream with the error code', async () => {
    control.onRegister = () => ({ status: 400, body: problem(400, 'auth_key_expired') });
    const events: Record<string, unknown>[] = [];
    await new LocalClient(socket).stream('/v1/up', { server: control.url, authKey: 'old' }, (e) => events.push(e));
    expect(events).toEqual([{ type: 'error', code: 'auth_key_expired', message: 'detail for auth_key_expired' }]);
  });

  it('rejects unknown fields and unknown routes', async () => {
    const client = new LocalClient(socket);
    await expect(client.stream('/v1/up', { server: control.url, bogus: 1 }, () => {})).rejects.toMatchObject({ daemonCode: 'bad_request' });
    await expect(client.call('GET', '/v1/nope')).rejects.toMatchObject({ daemonCode: 'not_found' });
  });

  it('the weft binary maps failures to documented exit codes from any cwd', async () => {
    const run = (args: string[]) => promisify(execFile)(process.execPath, [BIN, ...args], { cwd: '/' }).then(
      () => ({ code: 0, stderr: '' }),
      (err: { code: number; stderr: string }) => ({ code: err.code, stderr: err.stderr }),
    );
    const notRunning = await run(['status', '--socket', join(dir, 'none.sock')]);
    expect(notRunning.code).toBe(ExitCode.DaemonNotRunning);
    expect(notRunning.stderr).toContain('weft daemon');
    expect((await run(['status', '--frob'])).code).toBe(ExitCode.Usage);
    control.onRegister = () => ({ status: 401, body: problem(401, 'auth_key_invalid') });
    const bad = await run(['up', '--socket', socket, '--server', control.url, '--auth-key', 'nope']);
    expect(bad.code).toBe(ExitCode.AuthKeyInvalid);
    expect(bad.stderr).toContain('authkeys create');
  }, 30_000);

  it('weft metrics prints the daemon\'s Prometheus text and --json its samples: control state, counters, peers by path, handshake age and rx/tx per peer', async () => {
    const client = new LocalClient(socket);
    await client.stream('/v1/up', { server: control.url, authKey: 'k' }, () => {});
    device!.stat = [{ publicKey: peer(2).nodeKey as never, endpoint: '192.0.2.2:41641', lastHandshake: new Date(Date.now() - 7_000), rxBytes: 1234, txBytes: 5678 }];
    const run = (args: string[]) => promisify(execFile)(process.execPath, [BIN, ...args], { cwd: '/' });
    const text = (await run(['metrics', '--socket', socket])).stdout;
    for (const line of text.split('\n').filter(Boolean)) expect(line).toMatch(/^(# (HELP|TYPE) weft_agent_\w+ .+|weft_agent_\w+(\{(\w+="[^"]*",?)+\})? \d+)$/);
    expect(text).toContain('weft_agent_control_connected 1\n');
    expect(text).toContain('weft_agent_control_connects_total 1\n');
    expect(text).toContain('weft_agent_netmaps_applied_total 1\n');
    expect(text).toContain('weft_agent_peers{path="direct"} 1\n');
    expect(text).toContain('weft_agent_peer_rx_bytes_total{peer="peer2",id="2"} 1234\n');
    expect(text).toContain('weft_agent_peer_tx_bytes_total{peer="peer2",id="2"} 5678\n');
    // The handshake was 7 s before the request: its age is at least that (how much more depends on load).
    expect(Number(/^weft_agent_peer_handshake_age_seconds\{peer="peer2",id="2"\} (\d+)$/m.exec(text)?.[1])).toBeGreaterThanOrEqual(7);
    const json = JSON.parse((await run(['metrics', '--json', '--socket', socket])).stdout) as { samples: { name: string; labels: Record<string, string>; value: number }[] };
    expect(json.samples).toContainEqual({ name: 'weft_agent_interface_up', labels: { interface: 'weft0' }, value: 1 });
    expect(json.samples).toContainEqual({ name: 'weft_agent_peers', labels: { path: 'none' }, value: 0 });
    // Losing the control connection shows in the state and the reconnect counter.
    control.closeAll(1001);
    await waitUntil(async () => (await client.text('/v1/metrics')).includes('weft_agent_control_reconnects_total 1\n'));
  }, 30_000);

  it('netcheck: 409 not_logged_in before joining, 409 no_regions when the netmap lists no STUN, the report once it does; the CLI exits 13 / 18 / 0', async () => {
    const client = new LocalClient(socket);
    const run = (args: string[]) => promisify(execFile)(process.execPath, [BIN, ...args], { cwd: '/' }).then(
      (r) => ({ code: 0, ...r }),
      (e: { code: number; stdout: string; stderr: string }) => e,
    );
    await expect(client.call('GET', '/v1/netcheck')).rejects.toMatchObject({ daemonCode: 'not_logged_in' });
    expect((await run(['netcheck', '--socket', socket])).code).toBe(ExitCode.NotLoggedIn);
    await client.stream('/v1/up', { server: control.url, authKey: 'k' }, () => {});
    await expect(client.call('GET', '/v1/netcheck')).rejects.toMatchObject({ daemonCode: 'no_regions' });
    const none = await run(['netcheck', '--socket', socket]);
    expect(none.code).toBe(ExitCode.NoRegions);
    expect(none.stderr).toMatch(/lists no STUN server/);

    const { StunServer } = await import('@weft/relay');
    const stun = await StunServer.listen({ listen: '127.0.0.1:0' });
    try {
      const regions = [{ id: 1, code: 'embedded', name: 'this server', stun: [`127.0.0.1:${stun.address().port}`] }];
      control.onConnect = (ws) => ws.send(JSON.stringify({ type: 'netmap', seq: 1, protocolVersion: 1, self, peers: [peer(2)], regions }));
      control.closeAll(1001);
      await waitForRegions(client);
      const ok = await run(['netcheck', '--json', '--socket', socket]);
      expect(ok.code).toBe(ExitCode.Ok);
      expect(JSON.parse(ok.stdout)).toMatchObject({ version: 1, udp: true, portPreserved: true, preferredRegion: 1 });
    } finally {
      await stun.close();
    }
  }, 30_000);
});

/** The agent reconnects after dropAll and gets the netmap with regions; netcheck stops saying no_regions. */
async function waitForRegions(client: LocalClient): Promise<void> {
  for (let i = 0; i < 200; i++) {
    try {
      await client.call('GET', '/v1/netcheck');
      return;
    } catch (err) {
      if ((err as { daemonCode?: string }).daemonCode !== 'no_regions') throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error('the agent never got the netmap with regions');
}

async function waitUntil(pred: () => Promise<boolean>, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!(await pred())) {
    if (Date.now() > end) throw new Error('timed out');
    await new Promise((r) => setTimeout(r, 50));
  }
}
