/**
 * "No secret appears in a log": a real server at --log-level trace (every request line, every
 * debug field) is put through every flow that hands out or receives a secret, and its whole output
 * is searched for each one. A secret is also searched for in its forms that would leak it as well:
 * the bare value and its base64url/hex tails.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signMachineToken } from '@weft/crypto';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { cli, spawnServer, type ServerProcess } from '../support/process.js';

describe('secrets never reach the server log (trace level)', { timeout: 240_000 }, () => {
  let s: ServerProcess;
  const secrets = new Map<string, string>();
  const local = (...args: string[]) => cli([...args, '--data-dir', s.dataDir, '--json']);

  beforeAll(async () => {
    s = await spawnServer({}, undefined, ['--log-level', 'trace', '--log-format', 'json']);
  });
  afterAll(async () => s?.stop());

  it('API keys, SCIM tokens, auth keys, machine tokens, node private keys (add-peer) and a failed key attempt stay out of the log', async () => {
    expect((await local('users', 'create', 'alice')).code).toBe(0);
    const apiKey = JSON.parse((await local('apikeys', 'create', '--scopes', 'admin')).stdout).key as string;
    secrets.set('API key', apiKey);
    const authKey = JSON.parse((await local('authkeys', 'create', '--user', 'alice', '--reusable')).stdout).key as string;
    secrets.set('auth key', authKey);

    // The API over HTTP with the key, and with a wrong key that looks right.
    const ok = await fetch(`${s.url}/api/v1/users`, { headers: { authorization: `Bearer ${apiKey}` } });
    expect(ok.status).toBe(200);
    const wrong = `${apiKey.slice(0, -4)}AAAA`;
    secrets.set('wrong API key', wrong);
    expect((await fetch(`${s.url}/api/v1/users`, { headers: { authorization: `Bearer ${wrong}` } })).status).toBe(401);

    // A SCIM token at /scim/v2 (a create, an error, and the token refused at /api/v1), and a wrong one.
    const scimToken = JSON.parse((await local('scim', 'token', 'create')).stdout).key as string;
    secrets.set('SCIM token', scimToken);
    const scimHeaders = { authorization: `Bearer ${scimToken}`, 'content-type': 'application/scim+json' };
    expect((await fetch(`${s.url}/scim/v2/Users`, { method: 'POST', headers: scimHeaders, body: JSON.stringify({ userName: 'scim.bob' }) })).status).toBe(201);
    expect((await fetch(`${s.url}/scim/v2/Users`, { method: 'POST', headers: scimHeaders, body: '{"userName": ' })).status).toBe(400);
    expect((await fetch(`${s.url}/api/v1/users`, { headers: scimHeaders })).status).toBe(403);
    const wrongScim = `${scimToken.slice(0, -4)}CCCC`;
    secrets.set('wrong SCIM token', wrongScim);
    expect((await fetch(`${s.url}/scim/v2/Users`, { headers: { authorization: `Bearer ${wrongScim}` } })).status).toBe(401);

    // An agent: register with the auth key (machine token in the header), the WebSocket, a bad token.
    const agent = new SimAgent(s.url, 'laptop');
    const token = await signMachineToken(agent.machine.privateKey);
    secrets.set('machine token', token);
    await agent.register(authKey);
    await agent.connect();
    await agent.waitFor(() => agent.received.some((r) => r.msg.type === 'netmap'), 20_000, 'netmap');
    const badAuth = await fetch(`${s.url}/agent/v1/register`, {
      method: 'POST', headers: { 'content-type': 'application/json', authorization: `Bearer ${token}x` }, body: '{}',
    });
    expect(badAuth.status).toBeGreaterThanOrEqual(400);
    // A register with a wrong auth key in the body.
    const wrongAuthKey = `${authKey.slice(0, -4)}BBBB`;
    secrets.set('wrong auth key', wrongAuthKey);
    const other = new SimAgent(s.url, 'intruder');
    await expect(other.register(wrongAuthKey)).rejects.toThrow();

    // add-peer: the private key is made by the CLI and printed to the admin, never sent.
    const peer = await cli(['nodes', 'add-peer', 'phone', '--user', 'alice', '--data-dir', s.dataDir]);
    expect(peer.code, peer.stderr).toBe(0);
    const privateKey = /PrivateKey = (\S+)/.exec(peer.stdout)?.[1];
    expect(privateKey).toBeDefined();
    secrets.set('add-peer private key', privateKey!);

    // A backup streams hashes; the request itself is logged.
    expect((await cli(['backup', join(s.dataDir, 'b.backup'), '--data-dir', s.dataDir])).code).toBe(0);
    agent.close();
    await new Promise((r) => setTimeout(r, 500));

    const log = s.output();
    expect(log).toMatch(/"url":"\/api\/v1\/users"/); // trace level really logged the requests
    const leaks: string[] = [];
    for (const [what, secret] of secrets) {
      // The whole value, and its last 20 characters (a log that strips a known prefix still leaks).
      for (const probe of [secret, secret.slice(-20)]) if (log.includes(probe)) leaks.push(`${what} (${probe.slice(0, 8)}...)`);
    }
    expect(leaks).toEqual([]);
    // Nor did the data directory's backup hold the plain keys.
    const backup = readFileSync(join(s.dataDir, 'b.backup'), 'utf8');
    expect(backup.includes(apiKey) || backup.includes(authKey) || backup.includes(scimToken)).toBe(false);
  });
});
