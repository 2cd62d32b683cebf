import { describe, expect, it } from 'vitest';
import { generateUlaPrefix, intToIpv4, ipv4ToInt, ipv6For, IPV4_FIRST, IPV4_LAST } from '../../src/state/addresses.js';
import { sanitizeHostname, uniqueName } from '../../src/state/hostname.js';

describe('tunnel addresses', () => {
  it('stay inside 100.64.0.0/10', () => {
    expect(intToIpv4(IPV4_FIRST)).toBe('100.64.0.1');
    expect(intToIpv4(IPV4_LAST)).toBe('100.127.255.254');
    expect(ipv4ToInt(intToIpv4(IPV4_FIRST + 300))).toBe(IPV4_FIRST + 300);
    expect(() => ipv4ToInt('100.64.0')).toThrow(/not an IPv4/);
  });

  it('ULA prefixes are RFC 4193 /48s and IPv6 embeds the IPv4', () => {
    const p = generateUlaPrefix();
    expect(p).toMatch(/^fd[0-9a-f]{2}:[0-9a-f]{1,4}:[0-9a-f]{1,4}::\/48$/);
    expect(generateUlaPrefix()).not.toBe(p);
    expect(ipv6For('fd12:3456:789a::/48', ipv4ToInt('100.64.1.2'))).toBe('fd12:3456:789a::6440:102');
  });

  it('are in RFC 5952 form whatever the random bytes, and from a prefix stored padded', () => {
    for (let i = 0; i < 2000; i++) {
      const p = generateUlaPrefix();
      expect(p, p).not.toMatch(/:0[0-9a-f]/);
      const ip = ipv6For(p, ipv4ToInt('100.64.0.1'));
      expect(ip, ip).not.toMatch(/(^|:)0[0-9a-f]/);
    }
    expect(ipv6For('fd41:01e8:a8b7::/48', ipv4ToInt('100.64.0.1'))).toBe('fd41:1e8:a8b7::6440:1');
    expect(ipv6For('fd00:0000:0000::/48', ipv4ToInt('100.64.0.1'))).toBe('fd00::6440:1');
    expect(ipv6For('fd00:0:5::/48', ipv4ToInt('100.64.0.1'))).toBe('fd00:0:5::6440:1');
  });
});

describe('node names', () => {
  it.each([
    ['Alice’s MacBook Pro', 'alice-s-macbook-pro'],
    ['web-01.prod.example.com', 'web-01'],
    ['---', 'node'],
    ['UPPER_case', 'upper-case'],
    ['a'.repeat(80), 'a'.repeat(63)],
  ])('%s -> %s', (input, out) => expect(sanitizeHostname(input)).toBe(out));

  it('are made unique with -1, -2', () => {
    expect(uniqueName('web', new Set())).toBe('web');
    expect(uniqueName('web', new Set(['web']))).toBe('web-1');
    expect(uniqueName('web', new Set(['web', 'web-1']))).toBe('web-2');
    expect(uniqueName('a'.repeat(63), new Set(['a'.repeat(63)]))).toBe('a'.repeat(61) + '-1');
  });
});
