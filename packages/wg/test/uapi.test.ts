import { describe, expect, it } from 'vitest';
import { encodeSet, parseGet, parseReply, WgError } from '../src/index.js';
import { hex, PRIV_1, PUB_1, PUB_2, PUB_3 } from './fixtures.js';

describe('UAPI encodeSet', () => {
  it('refuses a value with a line break, which could inject UAPI lines (a second peer, a private key)', () => {
    for (const endpoint of ['[fe80::1%a\nprivate_key=00]:1', '1.2.3.4:1\r\npublic_key=00', '1.2.3.4:1\0']) {
      expect(() => encodeSet({}, [{ kind: 'upsert', publicKey: PUB_1, create: true, endpoint }])).toThrow(TypeError);
    }
    expect(() => encodeSet({}, [{ kind: 'upsert', publicKey: PUB_1, create: true, allowedIps: ['10.0.0.1/32\nallowed_ip=0.0.0.0/0'] }])).toThrow(/allowed_ip/);
  });

  it('writes interface keys first, then one section per peer, blank-line terminated', () => {
    const text = encodeSet({ privateKey: PRIV_1, listenPort: 51820 }, [
      { kind: 'remove', publicKey: PUB_3 },
      {
        kind: 'upsert', publicKey: PUB_2, create: true, endpoint: '[fd00::2]:51820', persistentKeepalive: 25,
        allowedIps: ['100.64.0.2/32', 'fd7a:115c:a1e0::2/128'],
      },
      { kind: 'upsert', publicKey: PUB_1, create: false, endpoint: '10.0.0.1:41641' },
    ]);
    expect(text).toBe([
      'set=1',
      `private_key=${'11'.repeat(32)}`,
      'listen_port=51820',
      `public_key=${hex(PUB_3)}`,
      'remove=true',
      `public_key=${hex(PUB_2)}`,
      'endpoint=[fd00::2]:51820',
      'persistent_keepalive_interval=25',
      'replace_allowed_ips=true',
      'allowed_ip=100.64.0.2/32',
      'allowed_ip=fd7a:115c:a1e0::2/128',
      `public_key=${hex(PUB_1)}`,
      'update_only=true',
      'endpoint=10.0.0.1:41641',
      '', '',
    ].join('\n'));
  });

  it('never emits replace_peers', () => {
    expect(encodeSet({}, [{ kind: 'upsert', publicKey: PUB_2, create: true, allowedIps: [] }])).not.toContain('replace_peers');
  });

  it('clears allowed IPs with replace_allowed_ips and no allowed_ip lines', () => {
    expect(encodeSet({}, [{ kind: 'upsert', publicKey: PUB_2, create: false, allowedIps: [] }]))
      .toBe(`set=1\npublic_key=${hex(PUB_2)}\nupdate_only=true\nreplace_allowed_ips=true\n\n`);
  });
});

describe('UAPI parseGet', () => {
  // Field order as wireguard-go 0.0.20220316 prints it; keys are fixtures.
  const GOLDEN = [
    `private_key=${'11'.repeat(32)}`,
    'listen_port=43117',
    `public_key=${hex(PUB_2)}`,
    'preshared_key=0000000000000000000000000000000000000000000000000000000000000000',
    'protocol_version=1',
    'endpoint=10.99.0.2:51820',
    'last_handshake_time_sec=1763787000',
    'last_handshake_time_nsec=123456789',
    'tx_bytes=1184',
    'rx_bytes=1092',
    'persistent_keepalive_interval=25',
    'allowed_ip=100.64.0.2/32',
    'allowed_ip=fd7a:115c:a1e0::2/128',
    `public_key=${hex(PUB_3)}`,
    'preshared_key=0000000000000000000000000000000000000000000000000000000000000000',
    'protocol_version=1',
    'last_handshake_time_sec=0',
    'last_handshake_time_nsec=0',
    'tx_bytes=0',
    'rx_bytes=0',
    'persistent_keepalive_interval=0',
    'errno=0',
    '', '',
  ].join('\n');

  it('parses interface and peers', () => {
    const s = parseGet(GOLDEN);
    expect(s.privateKey).toBe(PRIV_1);
    expect(s.listenPort).toBe(43117);
    expect(s.peers).toEqual([
      {
        publicKey: PUB_2, endpoint: '10.99.0.2:51820', allowedIps: ['100.64.0.2/32', 'fd7a:115c:a1e0::2/128'],
        persistentKeepalive: 25, lastHandshake: new Date(1763787000123), rxBytes: 1092, txBytes: 1184,
      },
      { publicKey: PUB_3, endpoint: null, allowedIps: [], persistentKeepalive: 0, lastHandshake: null, rxBytes: 0, txBytes: 0 },
    ]);
  });

  it('parses a device with no key and no peers', () => {
    expect(parseGet('listen_port=0\nerrno=0\n\n')).toEqual({ privateKey: null, listenPort: 0, fwmark: 0, peers: [] });
  });

  it('turns a non-zero errno into a WgError with the errno', () => {
    const err = (() => { try { parseReply('errno=-22\n\n'); } catch (e) { return e; } })();
    expect(err).toBeInstanceOf(WgError);
    expect((err as WgError).code).toBe('uapi_errno');
    expect((err as WgError).fields.errno).toBe(-22);
  });

  it('rejects a reply without errno', () => {
    expect(() => parseReply('listen_port=1\n\n')).toThrow(/errno/);
  });
});
