import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config.js';
import { MAX_PENDING_LOGINS } from '../../src/tunables.js';

const dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});

function fromFile(content: unknown) {
  const dir = mkdtempSync(join(tmpdir(), 'weft-cfg-'));
  dirs.push(dir);
  writeFileSync(join(dir, 'c.json'), JSON.stringify(content));
  return () => loadConfig(['--config', join(dir, 'c.json')], {});
}

describe('abuse-limit config', () => {
  it('trusts no proxy and caps pending logins by default', () => {
    expect(fromFile({})()).toMatchObject({ trustedProxies: [], maxPendingLogins: MAX_PENDING_LOGINS });
  });

  it('takes trusted proxies as addresses, CIDRs or "loopback"', () => {
    expect(fromFile({ trustedProxies: ['10.0.0.1', '10.1.0.0/16', 'fd00::/8', 'loopback'], maxPendingLogins: 5 })()).toMatchObject({ maxPendingLogins: 5 });
  });

  it('refuses a trusted proxy that is not an address, naming the key', () => {
    expect(fromFile({ trustedProxies: ['proxy.example.com'] })).toThrow(/"trusted-proxies" .*must be an IP address/);
    expect(fromFile({ trustedProxies: ['10.0.0.0/33'] })).toThrow(/"trusted-proxies"/);
    expect(fromFile({ maxPendingLogins: 0 })).toThrow(/"max-pending-logins"/);
  });
});
