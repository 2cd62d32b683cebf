import { describe, expect, it } from 'vitest';
import { forcedRelay, shouldRelay } from '../../src/path-choice.js';
import { pathOf } from '../../src/status.js';
import { RELAY_AFTER_NO_HANDSHAKE_MS } from '../../src/tunables.js';

describe('shouldRelay', () => {
  it('relays a peer whose endpoint has not handshaken within the window, not before', () => {
    expect(shouldRelay({ forced: false, sinceMs: RELAY_AFTER_NO_HANDSHAKE_MS - 1, lastHandshake: null })).toBe(false);
    expect(shouldRelay({ forced: false, sinceMs: RELAY_AFTER_NO_HANDSHAKE_MS, lastHandshake: null })).toBe(true);
  });

  it('never relays a peer that handshook directly, unless forced', () => {
    expect(shouldRelay({ forced: false, sinceMs: 10 * RELAY_AFTER_NO_HANDSHAKE_MS, lastHandshake: new Date() })).toBe(false);
    expect(shouldRelay({ forced: true, sinceMs: 0, lastHandshake: new Date() })).toBe(true);
  });
});

describe('forcedRelay (WEFT_RELAY_PEERS)', () => {
  const peer = { name: 'db-1', nodeKey: 'nodekey:' + 'ab'.repeat(32) };
  it('is off when unset or empty, * forces all, names and keys force one', () => {
    expect(forcedRelay(undefined)(peer)).toBe(false);
    expect(forcedRelay(' ')(peer)).toBe(false);
    expect(forcedRelay('*')(peer)).toBe(true);
    expect(forcedRelay('web, db-1')(peer)).toBe(true);
    expect(forcedRelay(peer.nodeKey)(peer)).toBe(true);
    expect(forcedRelay('db-2')(peer)).toBe(false);
  });
});

describe('pathOf', () => {
  const now = new Date('2026-12-01T12:00:00Z');
  const recent = new Date(now.getTime() - 5000);
  it('says relay when WireGuard sends to the local relay socket and handshook, direct for another endpoint, none without a handshake', () => {
    const stats = (endpoint: string, lastHandshake: Date | null) => ({ publicKey: 'nodekey:x' as never, endpoint, lastHandshake, rxBytes: 0, txBytes: 0 });
    expect(pathOf(stats('127.0.0.1:4000', recent), now, '127.0.0.1:4000')).toBe('relay');
    expect(pathOf(stats('192.0.2.1:41641', recent), now, '127.0.0.1:4000')).toBe('direct');
    expect(pathOf(stats('192.0.2.1:41641', recent), now)).toBe('direct');
    expect(pathOf(stats('127.0.0.1:4000', null), now, '127.0.0.1:4000')).toBe('none');
  });
});
