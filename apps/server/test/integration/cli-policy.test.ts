/**
 * `weft-server policy get|set|check|history|rollback|explain` against a real server: human output
 * and --json, errors printed like a compiler (FILE:LINE:COL: message), If-Match taken from the
 * server (a stale --if-match refused), and exit codes that mean something (0 ok / allowed,
 * 1 refused / denied, 2 usage, 3 unreachable).
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateNodeKey } from '@weft/crypto';
import { ExitCode } from '../../src/cli/admin.js';
import { policyCommand } from '../../src/cli/policy.js';
import { splitPort } from '../../src/cli/policy-admin.js';
import { SYSTEM } from '../../src/state/index.js';
import { startServer, type TestServer } from '../support/server.js';

const GOOD = `{
  "tagOwners": { "tag:db": [] },
  "acls": [
    // ops reach the database
    { "action": "accept", "src": ["olga@"], "dst": ["tag:db:5432"] },
  ],
}
`;

describe('admin CLI: the stored policy', () => {
  let s: TestServer;
  const dir = mkdtempSync(join(tmpdir(), 'weft-cli-policy-'));
  const file = (name: string, text: string) => {
    const path = join(dir, name);
    writeFileSync(path, text);
    return path;
  };
  beforeAll(async () => {
    s = await startServer('pglite');
    await s.state.users.create(SYSTEM, { name: 'olga' });
    await s.state.nodes.createExternal(SYSTEM, { user: 'olga', hostname: 'olga-laptop', nodeKey: generateNodeKey().publicKey });
    await s.state.nodes.createExternal(SYSTEM, { user: 'olga', hostname: 'db-1', nodeKey: generateNodeKey().publicKey, tags: ['tag:db'] });
  });
  afterAll(async () => {
    await s?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  async function run(args: string[], reach = ['--server', s.url, '--api-key', s.adminKey]) {
    let stdout = '';
    let stderr = '';
    const code = await policyCommand(['policy', ...args, ...reach].slice(1), async (t) => void (stdout += t), async (t) => void (stderr += t));
    return { code, stdout, stderr };
  }

  it('get with none stored says so, exit 0; history is empty', async () => {
    const r = await run(['get']);
    expect(r.code).toBe(ExitCode.Ok);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('No policy is stored: every node may reach every node (version 0)');
    expect(JSON.parse((await run(['get', '--json'])).stdout)).toMatchObject({ version: 0, default: true });
    expect((await run(['history'])).stdout).toContain('No policy versions stored');
  });

  it('check prints FILE:LINE:COL: message for every problem and exits 1; a good file exits 0', async () => {
    const bad = file('bad.hujson', '{\n  "acls": [\n    { "action": "accept", "src": ["group:ghosts"], "dst": ["tag:nope:22"] },\n  ],\n}\n');
    const r = await run(['check', bad]);
    expect(r.code).toBe(ExitCode.Refused);
    expect(r.stderr).toContain(`${bad}: rejected (2 problems):`);
    expect(r.stderr).toContain(`${bad}:3:35: unknown group "group:ghosts"`);
    expect(r.stderr).toContain(`${bad}:3:60: unknown tag "tag:nope"`);
    const good = await run(['check', file('good.hujson', GOOD)]);
    expect(good.code, good.stderr).toBe(ExitCode.Ok);
    expect(good.stdout).toContain('valid against the 2 nodes on the server');
    expect(JSON.parse((await run(['check', bad, '--json'])).stdout)).toMatchObject({ valid: false, errors: [{ line: 3, col: 35 }, { line: 3, col: 60 }] });
    expect(await s.state.policy.active()).toBeNull();
  });

  it('set sends the version in force as If-Match and prints the diff; a rejected file is FILE:LINE:COL and changes nothing', async () => {
    const path = file('v1.hujson', GOOD);
    const r = await run(['set', path]);
    expect(r.code, r.stderr).toBe(ExitCode.Ok);
    expect(r.stdout).toContain(`Policy version 1 is in force (from ${path}; it replaced version 0).`);
    expect(r.stdout).toContain('+++ policy v1');
    const again = await run(['set', path]);
    expect(again.stdout).toContain('is the policy in force already (version 1); nothing changed');
    const broken = file('broken.hujson', GOOD.replace('"olga@"', '"group:nobody"'));
    const rejected = await run(['set', broken]);
    expect(rejected.code).toBe(ExitCode.Refused);
    expect(rejected.stderr).toContain(`weft-server: ${broken} rejected (1 problem); the policy in force is unchanged:`);
    expect(rejected.stderr).toContain(`${broken}:5:35: unknown group "group:nobody"`);
    expect((await s.state.policy.active())?.version).toBe(1);
  });

  it('set --if-match with a stale version is refused (exit 1, the conflict named); a right one goes through', async () => {
    const path = file('v2.hujson', GOOD.replace('5432', '5432,6432'));
    const stale = await run(['set', path, '--if-match', '0']);
    expect(stale.code).toBe(ExitCode.Refused);
    expect(stale.stderr).toContain('the active policy is version 1');
    expect(stale.stderr).toContain('(policy_version_conflict)');
    const ok = await run(['set', path, '--if-match', '1', '--json']);
    expect(ok.code).toBe(ExitCode.Ok);
    expect(JSON.parse(ok.stdout)).toMatchObject({ version: 2, changed: true });
    const get = await run(['get']);
    expect(get.stdout).toBe(GOOD.replace('5432', '5432,6432'));
    expect(get.stderr).toMatch(/^policy version 2, written .* by apikey:weft-api-/);
  });

  it('history lists versions newest first; rollback VERSION adds a version with the old text', async () => {
    const h = await run(['history']);
    expect(h.code).toBe(ExitCode.Ok);
    expect(h.stdout).toMatch(/VERSION\s+TIME\s+AUTHOR\s+ORIGIN\s+CHANGE/);
    expect(h.stdout.split('\n').filter((l) => /^\d/.test(l)).map((l) => l.split(/\s+/)[0])).toEqual(['2', '1']);
    const paged = await run(['history', '--limit', '1']);
    expect(paged.stdout).toContain('Older versions: weft-server policy history --before 2');
    const rb = await run(['rollback', '1']);
    expect(rb.code, rb.stderr).toBe(ExitCode.Ok);
    expect(rb.stdout).toContain('Policy version 3 is in force: the text of version 1 (it replaced version 2).');
    expect(await s.state.policy.active()).toEqual({ version: 3, text: GOOD });
    expect((await run(['history', '--limit', '1'])).stdout).toContain('rollback to v1');
    const missing = await run(['rollback', '77']);
    expect(missing.code).toBe(ExitCode.Refused);
    expect(missing.stderr).toContain('no policy version 77');
  });

  it('explain: allowed exits 0 naming the rule and its line, denied exits 1, a bad name is refused', async () => {
    const ok = await run(['explain', 'olga-laptop', 'db-1:5432']);
    expect(ok.code, ok.stderr).toBe(ExitCode.Ok);
    expect(ok.stdout).toContain('allowed: tcp port 5432 from node olga-laptop');
    expect(ok.stdout).toContain('by the rule at line 5: { "action": "accept", "src": ["olga@"], "dst": ["tag:db:5432"] },');
    const denied = await run(['explain', 'olga-laptop', 'db-1:22']);
    expect(denied.code).toBe(ExitCode.Refused);
    expect(denied.stdout).toContain('denied: tcp port 22');
    const ports = await run(['explain', 'olga', 'tag:db']);
    expect(ports.stdout).toContain('ports 5432');
    // A rule without "proto" allows tcp, udp and icmp: udp 5432 is allowed, udp 53 is not.
    const udp = await run(['explain', 'olga-laptop', 'db-1:5432', '--proto', 'udp', '--json']);
    expect(udp.code).toBe(ExitCode.Ok);
    expect(JSON.parse(udp.stdout)).toMatchObject({ allowed: true, pairs: [{ proto: 17 }, { proto: 17 }] }); // IPv4 and IPv6
    expect((await run(['explain', 'olga-laptop', 'db-1:53', '--proto', 'udp'])).code).toBe(ExitCode.Refused);
    const unknown = await run(['explain', 'nobody', 'db-1']);
    expect(unknown.code).toBe(ExitCode.Refused);
    expect(unknown.stderr).toContain('"nobody" is not an IP address, a node, a user or a tag');
  });

  it('usage errors exit 2, an unreachable server 3', async () => {
    expect((await run(['set'])).code).toBe(ExitCode.Usage);
    expect((await run(['set', join(dir, 'missing.hujson')])).code).toBe(ExitCode.Usage);
    expect((await run(['rollback', 'latest'])).code).toBe(ExitCode.Usage);
    expect((await run(['explain', 'a'])).code).toBe(ExitCode.Usage);
    expect((await run(['set', join(dir, 'v1.hujson'), '--if-match', 'soon'])).code).toBe(ExitCode.Usage);
    const help = await run(['--help'], []);
    expect(help.code).toBe(ExitCode.Ok);
    expect(help.stdout).toContain('weft-server policy explain SRC DST[:PORT]');
    expect((await run(['get'], ['--socket', join(dir, 'no.sock')])).code).toBe(ExitCode.Unreachable);
  });

  it('DST[:PORT] splits at a last colon of digits; an IPv6 address takes a port only in brackets', () => {
    expect(splitPort('db-1:5432')).toEqual({ dst: 'db-1', port: 5432 });
    expect(splitPort('tag:db')).toEqual({ dst: 'tag:db' });
    expect(splitPort('tag:db:22')).toEqual({ dst: 'tag:db', port: 22 });
    expect(splitPort('fd7a::3')).toEqual({ dst: 'fd7a::3' });
    expect(splitPort('[fd7a::3]:22')).toEqual({ dst: 'fd7a::3', port: 22 });
    expect(splitPort('100.64.0.1:80')).toEqual({ dst: '100.64.0.1', port: 80 });
  });
});
