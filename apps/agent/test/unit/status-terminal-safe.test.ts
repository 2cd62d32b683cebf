import { describe, expect, it } from 'vitest';
import { formatStatus } from '../../src/cli/status-format.js';
import { peerStatus, type Status } from '../../src/status.js';
import { peer, self } from './fixtures.js';

const now = new Date('2026-11-22T12:00:00Z');

describe('weft status on a terminal', () => {
  const base: Status = {
    version: 1, state: 'running', online: true, server: 'http://10.77.0.1:8080', controlChannel: { scheme: 'http', caFile: null, warning: null },
    self: { ...self, machineKey: null }, interface: { name: 'weft0', backend: 'userspace', up: true, listenPort: 41641, mtu: 1280, mtuMode: 'fixed' },
    login: null, lastError: null, firewall: { state: 'off', rules: 0, skippedRules: [], error: null }, peers: [], skippedPeers: [],
  };

  it('shows control characters in peer hostnames and users as escapes, with the columns still aligned', () => {
    const out = formatStatus({
      ...base,
      peers: [
        peerStatus(peer(2, { name: 'evil\u001b]0;pwned\u0007', user: 'bob\u202e' }), undefined, now),
        peerStatus(peer(3), undefined, now),
      ],
    });
    expect(out).not.toMatch(/[\u0000-\u0009\u000b-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/);
    expect(out).toContain('evil\\x1b]0;pwned\\x07');
    expect(out).toContain('bob\\u202e');
    const [header, evil, plain] = out.trimEnd().split('\n').slice(-3) as [string, string, string];
    expect(evil.indexOf('bob')).toBe(header.indexOf('USER'));
    expect(plain.indexOf('alice')).toBe(header.indexOf('USER'));
  });

  it('escapes the error text and login details the server sent', () => {
    const out = formatStatus({
      ...base, state: 'needs-login',
      login: { url: 'http://x/login/AB\u001b[2J', code: 'ABCD-EFGH', expiresAt: now.toISOString() },
      lastError: { code: 'x', message: 'bad\u009b31m' },
    } as Status);
    expect(out).toContain('AB\\x1b[2J');
    expect(out).toContain('bad\\x9b31m');
  });
});
