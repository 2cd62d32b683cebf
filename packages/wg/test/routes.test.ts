import { describe, expect, it } from 'vitest';
import { batchScript, linkCleanupPlan, linkPlan } from '../src/index.js';

describe('link plan', () => {
  const want = {
    addresses: ['100.64.0.1/32', 'fd7a:115c:a1e0::1/128'],
    routes: ['100.64.0.0/10', 'fd7a:115c:a1e0::/48'],
    mtu: 1280,
  };

  it('sets MTU and up, replaces addresses and routes per family', () => {
    expect(linkPlan('weft0', want)).toEqual([
      ['ip', 'link', 'set', 'dev', 'weft0', 'mtu', '1280', 'up'],
      ['ip', '-4', 'addr', 'replace', '100.64.0.1/32', 'dev', 'weft0'],
      ['ip', '-6', 'addr', 'replace', 'fd7a:115c:a1e0::1/128', 'dev', 'weft0'],
      ['ip', '-4', 'route', 'replace', '100.64.0.0/10', 'dev', 'weft0'],
      ['ip', '-6', 'route', 'replace', 'fd7a:115c:a1e0::/48', 'dev', 'weft0'],
    ]);
  });

  it('removes only addresses and routes no longer wanted', () => {
    const had = { addresses: ['100.64.0.1/32', '100.64.0.7/32', 'fd7a:115c:a1e0::1/128'], routes: ['100.64.0.0/10', '10.9.0.0/16'] };
    expect(linkCleanupPlan('weft0', had, want)).toEqual([
      ['ip', '-4', 'addr', 'del', '100.64.0.7/32', 'dev', 'weft0'],
      ['ip', '-4', 'route', 'del', '10.9.0.0/16', 'dev', 'weft0'],
    ]);
  });

  it('runs a plan as one ip -batch script, the family left to ip (a batch line takes no options)', () => {
    expect(batchScript(linkPlan('weft0', want))).toBe([
      'link set dev weft0 mtu 1280 up',
      'addr replace 100.64.0.1/32 dev weft0',
      'addr replace fd7a:115c:a1e0::1/128 dev weft0',
      'route replace 100.64.0.0/10 dev weft0',
      'route replace fd7a:115c:a1e0::/48 dev weft0',
      '',
    ].join('\n'));
  });
});
