import { isIPv4, isIPv6 } from 'node:net';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { Endpoint, EndpointsMessage, MAX_ENDPOINTS, parseCidr, parseEndpoint, parseIPv4, parseIPv6, Peer } from '../src/index.js';

const accepts = (s: string) => parseEndpoint(s).ok;
const reason = (r: { ok: boolean; reason?: string }) => (r.ok ? 'ok' : r.reason);

describe('parseIPv4', () => {
  it('accepts octets 0 and 255 and refuses 256', () => {
    expect(parseIPv4('0.0.0.0')).toEqual({ ok: true, value: { family: 4, bytes: [0, 0, 0, 0] } });
    expect(parseIPv4('255.255.255.255')).toEqual({ ok: true, value: { family: 4, bytes: [255, 255, 255, 255] } });
    expect(reason(parseIPv4('192.0.2.256'))).toBe('octet 4 is 256, outside 0-255');
    expect(reason(parseIPv4('999.999.999.999'))).toBe('octet 1 is 999, outside 0-255');
  });

  it('refuses leading zeros, which read as octal to some parsers', () => {
    expect(reason(parseIPv4('010.0.0.1'))).toBe('octet 1 has a leading zero');
    expect(reason(parseIPv4('1.2.3.00'))).toBe('octet 4 has a leading zero');
    expect(parseIPv4('1.2.3.0').ok).toBe(true);
  });

  it('refuses other shapes: too few or many octets, hex, signs, spaces, empty, too many digits', () => {
    for (const s of ['1.2.3', '1.2.3.4.5', '0x7f.0.0.1', '+1.2.3.4', ' 1.2.3.4', '1.2.3.4 ', '1..3.4', '', '1.2.3.0004', '1.2.3.٣']) {
      expect(parseIPv4(s).ok, s).toBe(false);
    }
  });
});

describe('parseIPv6', () => {
  it('reads full, compressed and mixed forms to the same 16 bytes', () => {
    const bytes = (s: string) => { const r = parseIPv6(s); if (!r.ok) throw new Error(r.reason); return r.value.bytes; };
    const one = [...Array<number>(15).fill(0), 1];
    expect(bytes('::1')).toEqual(one);
    expect(bytes('0:0:0:0:0:0:0:1')).toEqual(one);
    expect(bytes('0000:0000:0000:0000:0000:0000:0000:0001')).toEqual(one);
    expect(bytes('::')).toEqual(Array<number>(16).fill(0));
    expect(bytes('FD7A:115C:A1E0::1')).toEqual(bytes('fd7a:115c:a1e0:0:0:0:0:1'));
    expect(bytes('1::')).toEqual([0, 1, ...Array<number>(14).fill(0)]);
    // "::" standing for exactly one group
    expect(bytes('1:2:3:4:5:6:7::')).toEqual(bytes('1:2:3:4:5:6:7:0'));
    expect(bytes('::2:3:4:5:6:7:8')).toEqual(bytes('0:2:3:4:5:6:7:8'));
  });

  it('accepts an IPv4-mapped address and checks its dotted tail as strictly as IPv4', () => {
    expect(parseIPv6('::ffff:192.0.2.1')).toEqual({ ok: true, value: { family: 6, bytes: [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 192, 0, 2, 1] } });
    expect(parseIPv6('1:2:3:4:5:6:1.2.3.4').ok).toBe(true);
    expect(reason(parseIPv6('::ffff:192.0.2.256'))).toBe('embedded IPv4: octet 4 is 256, outside 0-255');
    expect(reason(parseIPv6('::ffff:192.0.2.01'))).toBe('embedded IPv4: octet 4 has a leading zero');
    // the dotted part may only be the last 32 bits
    expect(parseIPv6('::1.2.3.4:5').ok).toBe(false);
    expect(parseIPv6('1:2:3:4:5:6:7:1.2.3.4').ok).toBe(false);
  });

  it('refuses too many colons, groups or digits, and a second "::"', () => {
    expect(reason(parseIPv6('1:2:3:4:5:6:7:8:9'))).toBe('has 9 groups; without "::" an IPv6 address has 8');
    expect(reason(parseIPv6('1:2:3:4:5:6:7'))).toBe('has 7 groups; without "::" an IPv6 address has 8');
    expect(reason(parseIPv6('1:2:3:4:5:6:7:8::'))).toBe('has 8 groups besides "::", which stands for at least one');
    expect(reason(parseIPv6('1::2::3'))).toBe('"::" may appear only once');
    expect(reason(parseIPv6('1:::2'))).toMatch(/not 1-4 hex digits/);
    expect(reason(parseIPv6(':1::'))).toMatch(/not 1-4 hex digits/);
    expect(reason(parseIPv6('1::2:'))).toMatch(/not 1-4 hex digits/);
    expect(reason(parseIPv6('12345::'))).toBe('group 1 is not 1-4 hex digits');
    expect(reason(parseIPv6('g::'))).toBe('group 1 is not 1-4 hex digits');
    expect(parseIPv6('1.2.3.4').ok).toBe(false);
  });

  it('refuses zone ids, whatever they hold', () => {
    expect(reason(parseIPv6('fe80::1%eth0'))).toBe('zone ids ("%" suffix) are not accepted');
    expect(parseIPv6('fe80::1%eth0\nprivate_key=00').ok).toBe(false);
  });

  it('agrees with Node\'s own IPv6 grammar on random text (zones aside)', () => {
    const chars = fc.constantFrom(...'0123456789abcdefABCDEF:.'.split(''), '::', '1.2.3.4', 'ffff');
    fc.assert(fc.property(fc.array(chars, { maxLength: 20 }).map((a) => a.join('')), (s) => {
      expect(parseIPv6(s).ok, s).toBe(isIPv6(s));
    }), { seed: 7, numRuns: 5000 });
  });

  it('agrees with Node on every rendering of random addresses', () => {
    const render = fc.tuple(fc.array(fc.integer({ min: 0, max: 0xffff }), { minLength: 8, maxLength: 8 }), fc.integer({ min: 0, max: 7 }), fc.integer({ min: 0, max: 8 }), fc.boolean())
      .map(([words, from, len, dotted]) => {
        const w = words.map((x, i) => (i >= from && i < from + len ? 0 : x));
        const hex = w.map((x) => x.toString(16));
        const groups = dotted ? [...hex.slice(0, 6), `${w[6]! >> 8}.${w[6]! & 0xff}.${w[7]! >> 8}.${w[7]! & 0xff}`] : hex;
        // compress the chosen run when it is all zeros
        const n = groups.length;
        const end = Math.min(from + len, n);
        const compressible = len > 0 && end > from && w.slice(from, from + len).every((x) => x === 0) && (!dotted || end <= 6);
        return compressible ? `${groups.slice(0, from).join(':')}::${groups.slice(end).join(':')}` : groups.join(':');
      });
    fc.assert(fc.property(render, (s) => {
      expect(parseIPv6(s).ok, s).toBe(true);
      expect(isIPv6(s), s).toBe(true);
    }), { seed: 11, numRuns: 2000 });
  });
});

describe('parseEndpoint', () => {
  it('refuses the endpoint that poisoned every peer', () => {
    expect(reason(parseEndpoint('999.999.999.999:99999'))).toBe('IPv4 address: octet 1 is 999, outside 0-255');
    expect(Endpoint.safeParse('999.999.999.999:99999').success).toBe(false);
  });

  it('accepts ports 1 and 65535 and refuses 0, 65536, leading zeros and non-digits', () => {
    expect(parseEndpoint('192.0.2.1:1')).toEqual({ ok: true, value: { family: 4, bytes: [192, 0, 2, 1], port: 1 } });
    expect(accepts('192.0.2.1:65535')).toBe(true);
    expect(reason(parseEndpoint('192.0.2.1:0'))).toBe('port is 0, outside 1-65535');
    expect(reason(parseEndpoint('192.0.2.1:65536'))).toBe('port is 65536, outside 1-65535');
    expect(reason(parseEndpoint('192.0.2.1:99999'))).toBe('port is 99999, outside 1-65535');
    expect(reason(parseEndpoint('192.0.2.1:051820'))).toBe('port is not a decimal number of 1-5 digits');
    expect(reason(parseEndpoint('192.0.2.1:01'))).toBe('port has a leading zero');
    for (const s of ['192.0.2.1:', '192.0.2.1:-1', '192.0.2.1:1e3', '192.0.2.1: 80', '192.0.2.1:80\n']) expect(accepts(s), JSON.stringify(s)).toBe(false);
  });

  it('reads bracketed IPv6, including compressed and v4-mapped forms', () => {
    expect(accepts('[::1]:51820')).toBe(true);
    expect(accepts('[fd7a:115c:a1e0::1]:41641')).toBe(true);
    expect(accepts('[2001:db8:0:0:0:0:0:1]:1')).toBe(true);
    expect(parseEndpoint('[::ffff:192.0.2.1]:41641')).toMatchObject({ ok: true, value: { family: 6, port: 41641 } });
    expect(accepts('[ffff:ffff:ffff:ffff:ffff:ffff:255.255.255.255]:65535')).toBe(true);
  });

  it('refuses unbracketed IPv6, bracketed IPv4, zones, missing ports and stray text', () => {
    expect(reason(parseEndpoint('::1:51820'))).toBe('an IPv6 endpoint needs brackets: "[ipv6]:port"');
    expect(reason(parseEndpoint('[192.0.2.1]:80'))).toMatch(/^IPv6 address:/);
    expect(reason(parseEndpoint('[fe80::1%eth0]:51820'))).toBe('IPv6 address: zone ids ("%" suffix) are not accepted');
    expect(reason(parseEndpoint('[::1]'))).toBe('expected ":port" after "]"');
    expect(reason(parseEndpoint('[::1:80'))).toBe('"[" without a closing "]"');
    expect(reason(parseEndpoint('192.0.2.1'))).toBe('no port; expected "a.b.c.d:port" or "[ipv6]:port"');
    expect(reason(parseEndpoint('[1:2:3:4:5:6:7:8:9]:80'))).toMatch(/9 groups/);
    for (const s of ['', 'not-an-endpoint', 'host.example:80', '[::1]:80x', '[::1]]:80', `${'1'.repeat(60)}:80`]) expect(accepts(s), s).toBe(false);
  });

  it('accepts only what Node\'s own address checks accept, on random text', () => {
    const part = fc.constantFrom('1', '0', '255', '256', '01', '.', ':', '::', '[', ']', 'ff', '65535', '65536', '%', 'a');
    fc.assert(fc.property(fc.array(part, { maxLength: 14 }).map((a) => a.join('')), (s) => {
      const r = parseEndpoint(s);
      if (!r.ok) return;
      const m = /^(?:\[(.*)\]|(.*)):(\d+)$/.exec(s)!;
      expect(m, s).not.toBeNull();
      expect(m[1] !== undefined ? isIPv6(m[1]) && !m[1].includes('%') : isIPv4(m[2]!), s).toBe(true);
      expect(Number(m[3])).toBeGreaterThanOrEqual(1);
      expect(Number(m[3])).toBeLessThanOrEqual(65535);
    }), { seed: 3, numRuns: 5000 });
  });
});

describe('parseCidr', () => {
  it('accepts prefix lengths up to 32 or 128 and refuses beyond, leading zeros and missing lengths', () => {
    expect(parseCidr('100.64.0.1/32')).toEqual({ ok: true, value: { family: 4, bytes: [100, 64, 0, 1], bits: 32 } });
    expect(parseCidr('0.0.0.0/0').ok).toBe(true);
    expect(parseCidr('fd7a:115c:a1e0::1/128').ok).toBe(true);
    expect(reason(parseCidr('100.64.0.1/33'))).toBe('prefix length is 33, outside 0-32');
    expect(reason(parseCidr('::1/129'))).toBe('prefix length is 129, outside 0-128');
    expect(reason(parseCidr('100.64.0.1/032'))).toBe('prefix length has a leading zero');
    expect(reason(parseCidr('100.64.0.1'))).toBe('no prefix length; expected "address/bits"');
    expect(reason(parseCidr('100.64.0.256/32'))).toBe('address: octet 4 is 256, outside 0-255');
  });
});

describe('schemas built on the parser', () => {
  it('an endpoints message carries at most MAX_ENDPOINTS, each checked strictly', () => {
    const eps = (n: number) => Array.from({ length: n }, (_, i) => `192.0.2.${i + 1}:41641`);
    expect(EndpointsMessage.safeParse({ type: 'endpoints', endpoints: eps(MAX_ENDPOINTS) }).success).toBe(true);
    expect(EndpointsMessage.safeParse({ type: 'endpoints', endpoints: eps(MAX_ENDPOINTS + 1) }).success).toBe(false);
    const bad = EndpointsMessage.safeParse({ type: 'endpoints', endpoints: ['192.0.2.1:41641', '[::1]:0'] });
    expect(bad.success).toBe(false);
    expect(bad.error!.issues[0]).toMatchObject({ path: ['endpoints', 1], message: 'port is 0, outside 1-65535' });
  });

  it('a peer with a bad address, CIDR or key fails Peer', () => {
    const good = {
      id: 2, name: 'p', user: 'u', nodeKey: `nodekey:${'a'.repeat(64)}`, ipv4: '100.64.0.2', ipv6: 'fd7a::2',
      allowedIps: ['100.64.0.2/32'], endpoints: ['192.0.2.2:41641'], online: true, lastSeen: null,
    };
    expect(Peer.safeParse(good).success).toBe(true);
    for (const over of [{ ipv4: '100.64.0.256' }, { ipv6: 'fd7a::2::3' }, { allowedIps: ['100.64.0.2/40'] }, { nodeKey: 'nodekey:zz' }, { endpoints: ['[fe80::1%a\nb]:1'] }]) {
      expect(Peer.safeParse({ ...good, ...over }).success, JSON.stringify(over)).toBe(false);
    }
  });
});
