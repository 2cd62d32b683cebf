import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadConfig, oidcSettings } from '../../src/config.js';

describe('OIDC config', () => {
  const dirs: string[] = [];
  const tempDir = () => {
    const dir = mkdtempSync(join(tmpdir(), 'weft-cfg-'));
    dirs.push(dir);
    return dir;
  };
  afterEach(() => {
    for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
  });
  const file = (json: unknown) => {
    const f = join(tempDir(), 'weft.json');
    writeFileSync(f, JSON.stringify(json));
    return f;
  };

  it('absent = no provider; issuer and client id from the environment, redirect URL from the server URL', () => {
    expect(oidcSettings(loadConfig([], {}), 'http://h')).toBeUndefined();
    const c = loadConfig([], { WEFT_OIDC_ISSUER: 'https://idp.example.com', WEFT_OIDC_CLIENT_ID: 'weft', WEFT_OIDC_CLIENT_SECRET: 's3cret-from-env' });
    expect(oidcSettings(c, 'https://weft.example.com/')).toMatchObject({
      issuer: 'https://idp.example.com', clientId: 'weft', clientSecret: 's3cret-from-env', redirectUrl: 'https://weft.example.com/auth/oidc/callback',
      scopes: ['openid', 'email', 'profile'], groupsClaim: 'groups', allowedDomains: [], adminGroups: [],
    });
  });

  it('the client secret comes from a file (its first line) or the environment, never from the config file', () => {
    const dir = tempDir();
    writeFileSync(join(dir, 'secret'), 'from-a-file\n');
    const c = loadConfig(['--config', file({ oidcIssuer: 'https://idp.example.com', oidcClientId: 'weft', oidcClientSecretFile: join(dir, 'secret') })], {});
    expect(c.oidcClientSecret).toBe('from-a-file');
    expect(() => loadConfig(['--config', file({ oidcIssuer: 'https://idp.example.com', oidcClientId: 'weft', oidcClientSecret: 'inline' })], {}))
      .toThrow(/"oidc-client-secret" \(config file .*\): put the secret in a file of its own/);
    expect(() => loadConfig([], { WEFT_OIDC_ISSUER: 'https://idp.example.com', WEFT_OIDC_CLIENT_ID: 'weft', WEFT_OIDC_CLIENT_SECRET_FILE: join(dir, 'missing') }))
      .toThrow(/"oidc-client-secret-file" \(environment variable WEFT_OIDC_CLIENT_SECRET_FILE\): cannot read .*ENOENT/);
  });

  it('a bad value names the key and where it came from, and never echoes the secret', () => {
    expect(() => loadConfig([], { WEFT_OIDC_ISSUER: 'http://idp.example.com', WEFT_OIDC_CLIENT_ID: 'weft' }))
      .toThrow(/"oidc-issuer" \(environment variable WEFT_OIDC_ISSUER\): must be https:\/\/ \(http:\/\/ only on localhost\)/);
    expect(() => loadConfig([], { WEFT_OIDC_CLIENT_ID: 'weft' })).toThrow(/"oidc-issuer" \(config\): is needed with oidcClientId/);
    let message = '';
    try {
      loadConfig([], { WEFT_OIDC_CLIENT_SECRET: 'super-secret-value' });
    } catch (err) {
      message = (err as Error).message;
    }
    expect(message).toMatch(/oidc-issuer/);
    expect(message).not.toContain('super-secret-value');
    expect(() => loadConfig(['--config', file({ oidcIssuer: 'https://i.example', oidcClientId: 'w', oidcAllowedDomains: ['not a domain'] })], {}))
      .toThrow(/"oidc-allowed-domains" \(config file .*\): must be a domain/);
    expect(() => loadConfig(['--config', file({ oidcIssuer: 'https://i.example', oidcClientId: 'w', oidcScopes: ['email'] })], {}))
      .toThrow(/"oidc-scopes" .*must include "openid"/);
  });

  it('lists and a namespaced groups claim come from the config file', () => {
    const c = loadConfig(['--config', file({
      oidcIssuer: 'http://127.0.0.1:9000', oidcClientId: 'w', oidcGroupsClaim: 'https://example.com/groups',
      oidcAllowedDomains: ['example.com'], oidcAllowedGroups: ['eng'], oidcAdminGroups: ['weft-admins'],
    })], {});
    expect(oidcSettings(c, 'http://h')).toMatchObject({ groupsClaim: 'https://example.com/groups', allowedDomains: ['example.com'], allowedGroups: ['eng'], adminGroups: ['weft-admins'] });
  });
});
