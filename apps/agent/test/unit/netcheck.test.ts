/** runNetcheck against real STUN servers (packages/relay StunServer) on loopback, and its human form. */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { StunServer } from '@weft/relay';
import { runNetcheck, type NetcheckReport } from '../../src/netcheck.js';
import { formatNetcheck } from '../../src/cli/netcheck-format.js';

let a: StunServer;
let b: StunServer;
beforeAll(async () => {
  a = await StunServer.listen({ listen: '127.0.0.1:0' });
  b = await StunServer.listen({ listen: '127.0.0.1:0' });
});
afterAll(async () => {
  await a.close();
  await b.close();
});

describe('runNetcheck', () => {
  it('two STUN servers answering on loopback: UDP yes, no NAT (mapping stable, port kept), both regions measured', async () => {
    const regions = [
      { id: 1, code: 'one', name: 'One', stun: [`127.0.0.1:${a.address().port}`] },
      { id: 2, code: 'two', name: 'Two', stun: [`localhost:${b.address().port}`] },
    ];
    const r = await runNetcheck(regions, { current: null, probes: 2, timeoutMs: 1000 });
    expect(r.udp).toBe(true);
    expect(r.ipv4).toEqual({ address: '127.0.0.1', port: r.localPort });
    expect(r.mappingVariesByDestination).toBe(false);
    expect(r.portPreserved).toBe(true);
    expect(r.regions.map((g) => g.latencyMs !== null)).toEqual([true, true]);
    expect([1, 2]).toContain(r.preferredRegion);
    expect(r.regions[1]!.stun[0]).toMatchObject({ address: `localhost:${b.address().port}`, error: null });
  });

  it('a STUN address nobody answers on: UDP no, after one request timeout, with the reason', async () => {
    const closed = await StunServer.listen({ listen: '127.0.0.1:0' });
    const port = closed.address().port;
    await closed.close();
    const r = await runNetcheck([{ id: 1, code: 'gone', name: 'Gone', stun: [`127.0.0.1:${port}`] }], { current: null, probes: 3, timeoutMs: 300 });
    expect(r).toMatchObject({ udp: false, ipv4: null, mappingVariesByDestination: null, portPreserved: null, preferredRegion: null });
    expect(r.regions[0]!.stun[0]!.error).toMatch(/no STUN Binding response/);
  });

  it('a name that does not resolve is reported, not thrown', async () => {
    const r = await runNetcheck([{ id: 1, code: 'x', name: 'X', stun: ['no-such-host.invalid:3478'] }], { current: null, timeoutMs: 300 });
    expect(r.udp).toBe(false);
    expect(r.regions[0]!.stun[0]!.error).toMatch(/cannot resolve no-such-host\.invalid/);
  });
});

describe('netcheck human output', () => {
  const base: NetcheckReport = {
    version: 1, time: '2026-12-01T00:00:00.000Z', udp: true, ipv4: { address: '203.0.113.5', port: 41641 }, ipv6: null,
    mappingVariesByDestination: false, portPreserved: true, localPort: 41641, preferredRegion: 1,
    regions: [{ id: 1, code: 'embedded', name: 'this server', latencyMs: 1.25, stun: [] }, { id: 2, code: 'fra', name: 'Frankfurt', latencyMs: null, stun: [] }],
  };

  it('reads like tailscale netcheck', () => {
    const out = formatNetcheck(base);
    expect(out).not.toContain('\\x');
    expect(out.split('\n')[1]).toMatch(/^  \* Time: /);
    expect(out).toContain('* UDP: yes');
    expect(out).toContain('* IPv4: yes, 203.0.113.5:41641');
    expect(out).toContain('* Mapping varies by destination: no');
    expect(out).toContain('* Port preserved: yes');
    expect(out).toContain('* Preferred region: embedded (this server)');
    expect(out).toMatch(/- embedded: 1\.3ms\s+\(this server\)/);
    expect(out).toMatch(/- fra:\s+no answer\s+\(Frankfurt\)/);
  });

  it('UDP blocked says so and what to do', () => {
    const out = formatNetcheck({ ...base, udp: false, ipv4: null, mappingVariesByDestination: null, portPreserved: null, preferredRegion: null });
    expect(out).toMatch(/UDP: no\. None of the 0 STUN servers answered over UDP: this network .* blocks outgoing UDP/s);
    expect(out).toMatch(/go through the relay over HTTPS/);
    expect(out).toMatch(/allow outgoing UDP/);
    expect(out).toContain('Mapping varies by destination: unknown (no UDP)');
  });

  it('endpoint-dependent NAT is named and explained', () => {
    const out = formatNetcheck({ ...base, mappingVariesByDestination: true, portPreserved: false, ipv4: { address: '203.0.113.5', port: 1001 } });
    expect(out).toMatch(/Mapping varies by destination: yes\. This NAT maps each destination to a new public port \(endpoint-dependent/);
    expect(out).toContain('Port preserved: no (local port 41641, public port 1001)');
  });

  it('names from the server cannot drive the terminal', () => {
    const out = formatNetcheck({ ...base, regions: [{ ...base.regions[0]!, name: 'evil\x1b]0;pwned\x07' }] });
    expect(out).not.toContain('\x1b');
  });
});
