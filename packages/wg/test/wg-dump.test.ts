import { describe, expect, it } from 'vitest';
import { kernelLinkAddCommand, parseWgDump, wgSetCommand } from '../src/index.js';
import { PRIV_1, PRIV_1_B64, PUB_1_B64, PUB_2, PUB_2_B64, PUB_3, PUB_3_B64 } from './fixtures.js';

describe('wg show dump parser', () => {
  const GOLDEN = [
    [PRIV_1_B64, PUB_1_B64, '51820', 'off'].join('\t'),
    [PUB_2_B64, '(none)', '10.99.0.2:51820', '100.64.0.2/32,fd7a:115c:a1e0::2/128', '1763787000', '1092', '1184', '25'].join('\t'),
    [PUB_3_B64, '(none)', '(none)', '(none)', '0', '0', '0', 'off'].join('\t'),
    '',
  ].join('\n');

  it('parses interface and peer lines', () => {
    expect(parseWgDump(GOLDEN)).toEqual({
      privateKey: PRIV_1, listenPort: 51820, fwmark: 0,
      peers: [
        {
          publicKey: PUB_2, endpoint: '10.99.0.2:51820', allowedIps: ['100.64.0.2/32', 'fd7a:115c:a1e0::2/128'],
          lastHandshake: new Date(1763787000_000), rxBytes: 1092, txBytes: 1184, persistentKeepalive: 25,
        },
        { publicKey: PUB_3, endpoint: null, allowedIps: [], lastHandshake: null, rxBytes: 0, txBytes: 0, persistentKeepalive: 0 },
      ],
    });
  });

  it('parses an interface with no private key', () => {
    expect(parseWgDump('(none)\t(none)\t0\toff\n').privateKey).toBeNull();
  });

  it('rejects truncated peer lines', () => {
    expect(() => parseWgDump(`${PRIV_1_B64}\t${PUB_1_B64}\t1\toff\n${PUB_2_B64}\t(none)\n`)).toThrow(/fields/);
  });
});

describe('kernel command construction', () => {
  it('creates the link with ip', () => {
    expect(kernelLinkAddCommand('weft0')).toEqual(['ip', 'link', 'add', 'dev', 'weft0', 'type', 'wireguard']);
  });

  it('builds wg set with the private key in a file, never in argv', () => {
    const argv = wgSetCommand('weft0', { privateKey: PRIV_1, listenPort: 41641 }, [
      { kind: 'remove', publicKey: PUB_3 },
      { kind: 'upsert', publicKey: PUB_2, create: true, endpoint: '10.0.0.2:51820', persistentKeepalive: 0, allowedIps: ['100.64.0.2/32', 'fd7a:115c:a1e0::2/128'] },
    ], '/tmp/weft-wg-x/key');
    expect(argv).toEqual([
      'wg', 'set', 'weft0', 'listen-port', '41641', 'private-key', '/tmp/weft-wg-x/key',
      'peer', PUB_3_B64, 'remove',
      'peer', PUB_2_B64, 'endpoint', '10.0.0.2:51820', 'persistent-keepalive', 'off', 'allowed-ips', '100.64.0.2/32,fd7a:115c:a1e0::2/128',
    ]);
    expect(argv.join(' ')).not.toContain(PRIV_1_B64);
  });

  it('refuses a private key without a key file', () => {
    expect(() => wgSetCommand('weft0', { privateKey: PRIV_1 }, [])).toThrow(/keyPath/);
  });

  it('clears allowed IPs with an empty list and only touches given fields', () => {
    expect(wgSetCommand('weft0', {}, [{ kind: 'upsert', publicKey: PUB_2, create: false, allowedIps: [] }]))
      .toEqual(['wg', 'set', 'weft0', 'peer', PUB_2_B64, 'allowed-ips', '']);
  });
});
