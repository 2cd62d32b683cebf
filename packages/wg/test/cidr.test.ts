import { describe, expect, it } from 'vitest';
import { normalizeCidr, normalizeEndpoint } from '../src/index.js';

describe('normalizeCidr (Go netip canonical form)', () => {
  it.each([
    ['100.64.0.9/10', '100.64.0.0/10'],
    ['100.64.0.2/32', '100.64.0.2/32'],
    ['100.64.0.2', '100.64.0.2/32'],
    ['0.0.0.0/0', '0.0.0.0/0'],
    ['FD7A:115C:A1E0:0:0:0:0:2/128', 'fd7a:115c:a1e0::2/128'],
    ['fd7a:115c:a1e0:ab12:4843:cd96:6258:b240/48', 'fd7a:115c:a1e0::/48'],
    ['2001:db8:0:0:1:0:0:1/128', '2001:db8::1:0:0:1/128'],
    ['2001:db8:0:1:1:1:1:1/128', '2001:db8:0:1:1:1:1:1/128'],
    ['::/0', '::/0'],
    ['::1/128', '::1/128'],
    ['::ffff:1.2.3.4/128', '::ffff:1.2.3.4/128'],
  ])('%s -> %s', (input, want) => {
    expect(normalizeCidr(input)).toBe(want);
  });

  it.each(['100.64.0.0/33', '100.64.0/24', 'fd7a::/129', 'nonsense', '1.2.3.4/', '1.2.3.4/x'])('rejects %s', (bad) => {
    expect(() => normalizeCidr(bad)).toThrow(TypeError);
  });
});

describe('normalizeEndpoint', () => {
  it('canonicalizes IPv6 and keeps IPv4', () => {
    expect(normalizeEndpoint('[FD00:0:0::1]:51820')).toBe('[fd00::1]:51820');
    expect(normalizeEndpoint('192.0.2.1:41641')).toBe('192.0.2.1:41641');
  });
  it.each(['fd00::1:51820', '192.0.2.1', '192.0.2.1:70000', 'host.example:1'])('rejects %s', (bad) => {
    expect(() => normalizeEndpoint(bad)).toThrow(TypeError);
  });
});
