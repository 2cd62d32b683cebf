/**
 * `weft netcheck` behind the lab's NAT routers (e2e/lab/nat.ts): its verdicts match what each
 * router does (e2e/nat-lab.test.ts measures the routers themselves). One server for the file:
 * the embedded STUN service (region 1, udp 3478) and a standalone weft-relay as region 2 (udp
 * 3479), so the agent has two destinations to compare its mapping across. The agent joins once;
 * each case moves its host behind another router (conntrack flushed on every move).
 */
import { writeFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import type { Router } from './lab/index.js';
import { useLab } from './lab/vitest.js';
import { AGENT_BIN, RELAY_BIN, WeftAgent, WeftServer, cli } from './lab/weft.js';

let server: WeftServer;
let agent: WeftAgent;

const ctx = useLab({ name: 'nc', hosts: ['server', 'a'] }, async (lab) => {
  const host = lab.hosts.server;
  const config = host.tmpPath('server-config.json');
  writeFileSync(config, JSON.stringify({ regions: [{ id: 2, code: 'second', name: 'second STUN (weft-relay)', stun: [`${host.ip}:3479`] }] }));
  const relay = host.spawn(process.execPath, [RELAY_BIN, ...cli.relay({ stunListen: '0.0.0.0:3479' })], { logName: 'weft-relay' });
  await relay.waitForLine(/3479/, 30_000);
  server = await WeftServer.start(lab, { stunListen: '0.0.0.0:3478', env: { WEFT_CONFIG: config }, readyTimeoutMs: 90_000 });
  agent = await WeftAgent.start(lab.hosts.a);
  await agent.upOk({ server: server.url, authKey: await server.authKey('lab'), hostname: 'a' });
});

async function behind(r: Router | null): Promise<void> {
  const { lab } = ctx;
  await lab.attach(lab.hosts.a, r ?? lab.internet);
}

describe('weft netcheck', () => {
  it('no NAT: UDP yes, the host\'s own address, port kept, mapping stable, both regions measured', async () => {
    await behind(null);
    const { code, report } = await agent.netcheck();
    expect(code).toBe(0);
    expect(report).toMatchObject({ udp: true, ipv4: { address: ctx.lab.hosts.a.ip }, mappingVariesByDestination: false, portPreserved: true });
    expect(report.regions.map((g) => [g.id, g.code, g.latencyMs !== null])).toEqual([[1, 'embedded', true], [2, 'second', true]]);
    expect(report.regions[0]!.stun[0]!.address).toBe(`${ctx.lab.hosts.server.ip}:3478`);
    expect([1, 2]).toContain(report.preferredRegion);
  });

  it('behind endpoint-independent NAT: UDP yes, mapping does not vary, public IP = the router\'s', async () => {
    const r = await ctx.lab.addRouter('eim', { nat: 'eim' });
    await behind(r);
    const { code, report } = await agent.netcheck();
    expect(code).toBe(0);
    expect(report).toMatchObject({ udp: true, ipv4: { address: r.wanIp, port: report.localPort }, mappingVariesByDestination: false, portPreserved: true });
  });

  it('behind endpoint-independent NAT that remaps ports: mapping does not vary, port not preserved', async () => {
    const r = await ctx.lab.addRouter('remap', { nat: 'eim-no-preserve' });
    await behind(r);
    const { report } = await agent.netcheck();
    expect(report).toMatchObject({ udp: true, ipv4: { address: r.wanIp }, mappingVariesByDestination: false, portPreserved: false });
  });

  it('behind endpoint-dependent NAT: mapping varies by destination', async () => {
    const r = await ctx.lab.addRouter('edm', { nat: 'edm' });
    await behind(r);
    const { code, report } = await agent.netcheck();
    expect(code).toBe(0);
    expect(report).toMatchObject({ udp: true, ipv4: { address: r.wanIp }, mappingVariesByDestination: true });
    const mapped = report.regions.map((g) => g.stun[0]!.mapped);
    expect(new Set(mapped).size).toBe(2);
  });

  it('UDP blocked: UDP no, exit 17, and the human output says what it means and what to do', async () => {
    const r = await ctx.lab.addRouter('tcponly', { nat: 'udp-blocked' });
    await behind(r);
    const { code, report } = await agent.netcheck();
    expect(code).toBe(17);
    expect(report).toMatchObject({ udp: false, ipv4: null, mappingVariesByDestination: null, portPreserved: null, preferredRegion: null });
    const human = await ctx.lab.hosts.a.exec(process.execPath, [AGENT_BIN, ...cli.netcheck(agent.socket, false)], { timeoutMs: 30_000 });
    expect(human.code).toBe(17);
    expect(human.stdout).toMatch(/UDP: no\. None of the 2 STUN servers answered over UDP: this network .*blocks outgoing UDP/s);
    expect(human.stdout).toMatch(/relay over HTTPS/);
    expect(human.stdout).toMatch(/allow outgoing UDP/);
  });

  it('double NAT (carrier NAT): public IP = the outer router\'s', async () => {
    const isp = await ctx.lab.addRouter('isp', { nat: 'eim', subnet: '100.64.7' });
    const cpe = await ctx.lab.addRouter('cpe', { nat: 'eim', upstream: isp });
    await behind(cpe);
    const { code, report } = await agent.netcheck();
    expect(code).toBe(0);
    expect(report).toMatchObject({ udp: true, ipv4: { address: isp.wanIp }, mappingVariesByDestination: false });
  });
});
