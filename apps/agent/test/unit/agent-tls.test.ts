/**
 * The agent over https/wss with a CA the test makes (openssl): verified against --ca-file, which
 * is kept for a restarted daemon; a certificate from a CA it does not trust, or an expired one,
 * is refused with a message saying what is wrong and what to do (exit 19); plain http to a
 * server that is not on this host is called out in `weft status` and its --json.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent.js';
import { AgentError } from '../../src/agent-error.js';
import { silentLogger } from '../../src/log.js';
import { StateStore } from '../../src/state-store.js';
import { exitCodeFor, ExitCode } from '../../src/cli/exit-codes.js';
import { formatStatus } from '../../src/cli/status-format.js';
import { plainHttpWarning } from '../../src/tls-trust.js';
import { issue, makeCa, type TestCa } from '../../../../test-support/test-ca.js';
import { FakeControl } from './fake-control.js';
import { FakeDevice } from './fake-device.js';
import { peer, self } from './fixtures.js';

const netmap = { type: 'netmap' as const, seq: 1, protocolVersion: 1, self, peers: [peer(2)] };

describe('agent and an https control server', { timeout: 30_000 }, () => {
  let dir: string;
  let ca: TestCa;
  let other: TestCa;
  const controls: FakeControl[] = [];
  const agents: Agent[] = [];

  beforeAll(() => {
    dir = mkdtempSync(join(tmpdir(), 'weft-agent-tls-'));
    ca = makeCa(dir, 'fleet-ca');
    other = makeCa(dir, 'other-ca');
  });
  afterEach(async () => {
    for (const a of agents.splice(0)) await a.shutdown();
    for (const c of controls.splice(0)) await c.stop();
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  const control = async (leaf: { cert: Buffer; key: Buffer }) => {
    const c = new FakeControl(leaf);
    c.onRegister = () => ({ status: 200, body: { status: 'registered', node: self } });
    c.onConnect = (ws) => ws.send(JSON.stringify(netmap));
    await c.start();
    controls.push(c);
    return c;
  };
  const agent = (stateDir: string) => {
    const a = new Agent({
      store: new StateStore(stateDir), openDevice: () => new FakeDevice(), interfaceName: 'weft0', backend: 'userspace',
      listenPort: 41641, mtu: 1280, log: silentLogger, loginPollMs: 20, hostname: () => 'tlshost',
    });
    agents.push(a);
    return a;
  };
  const refusal = (p: Promise<unknown>) => p.then(() => { throw new Error('expected a refusal'); }, (e: unknown) => e as AgentError);

  it('joins over https and wss verified with --ca-file, and a restarted daemon still trusts it', async () => {
    const c = await control(issue(ca, dir, 'good', ['127.0.0.1']));
    const stateDir = join(dir, 'state-good');
    const a = agent(stateDir);
    await a.start();
    await a.up({ server: c.url, authKey: 'weft-auth-x', caFile: ca.certFile }, () => {}, new AbortController().signal);
    expect(await a.status()).toMatchObject({ state: 'running', online: true, controlChannel: { scheme: 'https', caFile: ca.certFile, warning: null } });
    expect(c.connections).toBe(1);
    await a.shutdown();

    const again = agent(stateDir);
    await again.start();
    const until = Date.now() + 10_000;
    while (!(await again.status()).online) {
      if (Date.now() > until) throw new Error(`restarted daemon did not reconnect: ${JSON.stringify((await again.status()).lastError)}`);
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(c.connections).toBe(2);
  });

  it('a running daemon whose server turns up with an untrusted certificate says so in status, and reconnects once it is fixed', async () => {
    const good = issue(ca, dir, 'rotating', ['127.0.0.1']);
    const c = await control(good);
    const a = agent(join(dir, 'state-rotating'));
    await a.start();
    await a.up({ server: c.url, authKey: 'k', caFile: ca.certFile }, () => {}, new AbortController().signal);
    c.setCertificate(issue(other, dir, 'rogue', ['127.0.0.1']));
    c.closeAll(1012);
    const waitFor = async (cond: (s: Awaited<ReturnType<Agent['status']>>) => boolean, what: string) => {
      const until = Date.now() + 10_000;
      while (!cond(await a.status())) {
        if (Date.now() > until) throw new Error(`timed out waiting for ${what}: ${JSON.stringify((await a.status()).lastError)}`);
        await new Promise((r) => setTimeout(r, 20));
      }
    };
    await waitFor((s) => s.lastError?.code === 'server_certificate', 'the refused certificate in status');
    const s = await a.status();
    expect(s.online).toBe(false);
    expect(s.lastError!.message).toMatch(/is signed by a CA that is not trusted here .*--ca-file FILE/);
    expect(formatStatus(s)).toContain('[server_certificate]');
    c.setCertificate(good);
    await waitFor((st) => st.online && st.lastError === null, 'reconnect once the certificate is good again');
  });

  it('refuses a server whose certificate chains to a CA it does not trust, saying to pass --ca-file (exit 19)', async () => {
    const c = await control(issue(other, dir, 'foreign', ['127.0.0.1']));
    const a = agent(join(dir, 'state-foreign'));
    await a.start();
    const withoutCa = await refusal(a.up({ server: c.url, authKey: 'k' }, () => {}, new AbortController().signal));
    expect(withoutCa.code).toBe('server_certificate');
    expect(withoutCa.message).toMatch(/certificate \(https:\/\/127\.0\.0\.1:\d+\) is signed by a CA that is not trusted here \[UNABLE_TO_VERIFY_LEAF_SIGNATURE\].*--ca-file FILE/);
    expect(exitCodeFor(withoutCa.code)).toBe(ExitCode.ServerCertificate);
    const wrongCa = await refusal(a.up({ server: c.url, authKey: 'k', caFile: ca.certFile }, () => {}, new AbortController().signal));
    expect(wrongCa.message).toContain(`does not chain to ${ca.certFile}`);
    expect(c.registers).toHaveLength(0);
  });

  it('reports an expired server certificate as expired, and what to do', async () => {
    const expired = issue(ca, dir, 'expired', ['127.0.0.1'], { notBefore: new Date(Date.now() - 10 * 86400_000), notAfter: new Date(Date.now() - 86400_000) });
    const c = await control(expired);
    const a = agent(join(dir, 'state-expired'));
    await a.start();
    const err = await refusal(a.up({ server: c.url, authKey: 'k', caFile: ca.certFile }, () => {}, new AbortController().signal));
    expect(err.code).toBe('server_certificate');
    expect(err.message).toMatch(/has expired \[CERT_HAS_EXPIRED\]\. Renew the certificate on the server/);
  });

  it('a CA file that cannot be read is a usage error naming it, and nothing is sent', async () => {
    const c = await control(issue(ca, dir, 'unused', ['127.0.0.1']));
    const a = agent(join(dir, 'state-nofile'));
    await a.start();
    const err = await refusal(a.up({ server: c.url, authKey: 'k', caFile: join(dir, 'nope.pem') }, () => {}, new AbortController().signal));
    expect(err.code).toBe('bad_request');
    expect(err.message).toBe(`cannot read CA file ${join(dir, 'nope.pem')}: no such file`);
    expect(exitCodeFor(err.code)).toBe(ExitCode.Usage);
    expect(c.registers).toHaveLength(0);
  });

  it('plain http to a server off this host is called out in weft status and its --json', async () => {
    const c = new FakeControl();
    c.onRegister = () => ({ status: 200, body: { status: 'registered', node: self } });
    c.onConnect = (ws) => ws.send(JSON.stringify(netmap));
    await c.start();
    controls.push(c);
    const a = agent(join(dir, 'state-plain'));
    await a.start();
    await a.up({ server: c.url, authKey: 'k' }, () => {}, new AbortController().signal);
    // Loopback plain http never leaves the host: no warning.
    expect((await a.status()).controlChannel).toEqual({ scheme: 'http', caFile: null, warning: null });

    const status = { ...(await a.status()), server: 'http://10.77.0.1:8080' };
    status.controlChannel = { scheme: 'http', caFile: null, warning: plainHttpWarning(status.server) };
    expect(status.controlChannel.warning).toMatch(/control channel to http:\/\/10\.77\.0\.1:8080 is NOT PROTECTED/);
    expect(formatStatus(status).split('\n')[0]).toMatch(/^WARNING: the control channel .* is NOT PROTECTED: plain HTTP/);
    expect(JSON.parse(JSON.stringify(status)).controlChannel.warning).toContain('NOT PROTECTED');
    for (const safe of ['https://10.77.0.1:8443', 'http://127.0.0.1:8080', 'http://[::1]:8080', 'http://localhost:8080']) expect(plainHttpWarning(safe)).toBeNull();
    expect(plainHttpWarning('http://weft.example.com')).not.toBeNull();
  });
});
