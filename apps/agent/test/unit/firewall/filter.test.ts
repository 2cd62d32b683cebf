import { describe, expect, it } from 'vitest';
import { allows, checkFilter, parsePorts, type Flow } from '../../../src/firewall/filter.js';
import { formatRange, merge, parseAddress, parseRange } from '../../../src/firewall/ranges.js';

const flow = (src: string, dst: string, proto: number, dport: number): Flow => {
  const s = parseAddress(src)!;
  return { family: s.family, src: s.n, dst: parseAddress(dst)!.n, proto, dport };
};

describe('packet filter checking', () => {
  it('reads IPs, CIDRs (host bits masked) and a-b ranges, and merges them into the fewest elements', () => {
    const r = (t: string) => {
      const p = parseRange(t);
      if (!p.ok) throw new Error(p.reason);
      return p.value;
    };
    expect(formatRange(r('100.64.0.9/30'))).toBe('100.64.0.8/30');
    expect(formatRange(r('10.0.0.1-10.0.0.9'))).toBe('10.0.0.1-10.0.0.9');
    expect(formatRange(r('fd7a:115c:a1e0::0-fd7a:115c:a1e0::ffff'))).toBe('fd7a:115c:a1e0::/112');
    expect(merge([r('100.64.0.2'), r('100.64.0.3'), r('100.64.0.1')]).map(formatRange)).toEqual(['100.64.0.1-100.64.0.3']);
    expect(merge([r('10.0.0.0/8'), r('10.1.2.3')]).map(formatRange)).toEqual(['10.0.0.0/8']);
    expect(parseRange('1.2.3.4-::1')).toMatchObject({ ok: false, reason: 'range mixes IPv4 and IPv6' });
  });

  it('ports are "*", N or LO-HI within 0-65535', () => {
    expect(parsePorts('*')).toEqual({ lo: 0, hi: 65535 });
    expect(parsePorts('22')).toEqual({ lo: 22, hi: 22 });
    expect(parsePorts('80-90')).toEqual({ lo: 80, hi: 90 });
    expect(parsePorts('90-80')).toMatch(/after its end/);
    expect(parsePorts('65536')).toMatch(/above 65535/);
    expect(parsePorts('22,443')).toMatch(/expected/);
  });

  it('leaves out a rule whose text could carry nft syntax, and keeps the others', () => {
    const c = checkFilter([
      { srcIPs: ['100.64.0.2 } accept'], dstPorts: [{ ip: '100.64.0.1', ports: '22' }], protos: [6] },
      { srcIPs: ['100.64.0.2'], dstPorts: [{ ip: '*', ports: '22\n' }], protos: [6] },
      { srcIPs: ['100.64.0.2'], dstPorts: [{ ip: '100.64.0.1', ports: '22' }], protos: [6.5] },
      { srcIPs: ['100.64.0.3'], dstPorts: [{ ip: '100.64.0.1', ports: '22' }], protos: [6] },
    ]);
    expect(c.skipped.map((s) => s.index)).toEqual([0, 1, 2]);
    expect(c.skipped[0]!.reason).toMatch(/^srcIPs\[0\]: /);
    expect(c.rules.map((r) => r.index)).toEqual([3]);
  });

  it('allows: source, destination, protocol and port must all match one rule; ports only for port protocols', () => {
    const c = checkFilter([
      { srcIPs: ['100.64.0.2', 'fd7a::2'], dstPorts: [{ ip: '100.64.0.1', ports: '22' }, { ip: 'fd7a::1', ports: '22' }], protos: [6, 1] },
    ]);
    expect(allows(c, flow('100.64.0.2', '100.64.0.1', 6, 22))).toBe(true);
    expect(allows(c, flow('fd7a::2', 'fd7a::1', 6, 22))).toBe(true);
    expect(allows(c, flow('100.64.0.2', '100.64.0.1', 6, 23))).toBe(false);
    expect(allows(c, flow('100.64.0.3', '100.64.0.1', 6, 22))).toBe(false);
    expect(allows(c, flow('100.64.0.2', '100.64.0.9', 6, 22))).toBe(false);
    expect(allows(c, flow('100.64.0.2', '100.64.0.1', 17, 22))).toBe(false);
    expect(allows(c, flow('100.64.0.2', '100.64.0.1', 1, 0))).toBe(true);
    expect(allows(null, flow('100.64.0.3', '100.64.0.1', 17, 53))).toBe(true);
    expect(allows(checkFilter([]), flow('100.64.0.2', '100.64.0.1', 6, 22))).toBe(false);
  });

  it('an empty protos list is TCP, UDP, ICMP and ICMPv6, as in Tailscale', () => {
    const c = checkFilter([{ srcIPs: ['*'], dstPorts: [{ ip: '*', ports: '*' }], protos: [] }]);
    expect(c.rules[0]!.protos).toEqual([1, 6, 17, 58]);
    expect(allows(c, flow('10.0.0.1', '100.64.0.1', 132, 1))).toBe(false);
  });
});

describe('address fast paths', () => {
  it('read every address form exactly as the strict protocol parser does, and refuse what it refuses', async () => {
    const { parseIp } = await import('@weft/protocol');
    const slow = (t: string) => {
      const ip = parseIp(t);
      return ip.ok ? `${ip.value.family}:${ip.value.bytes.map((b) => b.toString(16).padStart(2, '0')).join('')}` : 'refused';
    };
    const fast = (t: string) => {
      const r = parseRange(t);
      return r.ok ? `${r.value.family}:${r.value.lo.toString(16).padStart(r.value.family === 4 ? 8 : 32, '0')}` : 'refused';
    };
    const forms = ['::', '::1', '1::', 'fd7a:115c:a1e0::2', '1:2:3:4:5:6:7:8', '1:2:3:4:5:6:7::', '::2:3:4:5:6:7:8', 'FD7A::AbC', '0:0:0:0:0:0:0:0',
      '1::2:3:4:5:6:7:8', ':::', '1:2:3:4:5:6:7:8:9', '1:2:3:4:5:6:7', '12345::', '::ffff:1.2.3.4', '1::2::3', 'fe80::1%eth0', ':1::', '1::2:',
      '0.0.0.0', '255.255.255.255', '100.64.0.1', '01.2.3.4', '1.2.3', '256.1.1.1', '1.2.3.4.5', ' 1.2.3.4', '1.2.3.4\n'];
    let seed = 7;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) % 2 ** 31) % n;
    for (let i = 0; i < 500; i++) {
      const groups = Array.from({ length: 8 }, () => (rnd(3) === 0 ? '0' : rnd(65536).toString(16)));
      const at = rnd(9);
      const len = rnd(4);
      forms.push(at < 8 ? [...groups.slice(0, at), '', ...groups.slice(at + len)].join(':').replace(/^:(?!:)/, '::').replace(/:$/, '::') : groups.join(':'));
    }
    for (const t of forms) expect(fast(t), t).toBe(slow(t));
  });
});
