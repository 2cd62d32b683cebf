import { describe, expect, it } from 'vitest';
import { qrPng, qrSvg, qrTerminal, toWgQuick } from '../src/index.js';
import { PRIV_1, PRIV_1_B64, PUB_2, PUB_2_B64, PUB_3, PUB_3_B64 } from './fixtures.js';

const PHONE = {
  privateKey: PRIV_1,
  addresses: ['100.64.0.7/32', 'fd7a:115c:a1e0::7/128'],
  dns: ['100.100.100.100'],
  peers: [
    { publicKey: PUB_2, endpoint: '203.0.113.10:51820', allowedIps: ['100.64.0.0/10', 'fd7a:115c:a1e0::/48'], persistentKeepalive: 25 },
    { publicKey: PUB_3, allowedIps: ['100.64.0.3/32'] },
  ],
};

describe('wg-quick export', () => {
  it('writes the golden text', () => {
    expect(toWgQuick(PHONE)).toBe(`[Interface]
PrivateKey = ${PRIV_1_B64}
Address = 100.64.0.7/32, fd7a:115c:a1e0::7/128
DNS = 100.100.100.100
MTU = 1280

[Peer]
PublicKey = ${PUB_2_B64}
AllowedIPs = 100.64.0.0/10, fd7a:115c:a1e0::/48
Endpoint = 203.0.113.10:51820
PersistentKeepalive = 25

[Peer]
PublicKey = ${PUB_3_B64}
AllowedIPs = 100.64.0.3/32
`);
  });

  it('omits DNS when absent and honours MTU and ListenPort', () => {
    const text = toWgQuick({ ...PHONE, dns: [], mtu: 1380, listenPort: 51821, peers: [] });
    expect(text).toBe(`[Interface]\nPrivateKey = ${PRIV_1_B64}\nAddress = 100.64.0.7/32, fd7a:115c:a1e0::7/128\nListenPort = 51821\nMTU = 1380\n`);
  });

  it('never leaks the Weft key text forms', () => {
    expect(toWgQuick(PHONE)).not.toMatch(/nodekey:|privkey:/);
  });
});

describe('QR codes', () => {
  const text = toWgQuick(PHONE);

  it('renders for a terminal with half blocks, square and deterministic', async () => {
    const a = await qrTerminal(text);
    expect(a).toBe(await qrTerminal(text));
    const rows = a.split('\n').filter((l) => l.length);
    expect(rows.length).toBeGreaterThan(20);
    expect(new Set(rows.map((r) => [...r].length)).size).toBe(1);
    expect(a).toMatch(/[▀▄█]/);
  });

  it('renders PNG and SVG', async () => {
    const png = await qrPng(text);
    expect(png.subarray(0, 8)).toEqual(Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]));
    const svg = await qrSvg(text);
    expect(svg).toMatch(/^<svg [^>]*xmlns="http:\/\/www.w3.org\/2000\/svg"/);
    expect(svg).toContain('<path');
  });
});
