/**
 * `weft-server policy compile` as an operator runs it: the real CLI, no server, no database. Guards
 * that a multi-megabyte result read through a pipe arrives whole, and the exit codes and stderr of
 * a rejected policy and of a usage error.
 */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SERVER_BIN } from '../support/process.js';

const dir = mkdtempSync(join(tmpdir(), 'weft-policy-compile-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function file(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** Runs the CLI with stdout on a pipe that is read slowly, so a write not drained before exit would be lost. */
function run(args: string[], slowReader = false): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const proc = spawn(process.execPath, [SERVER_BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    const out: Buffer[] = [];
    let stderr = '';
    proc.stdout.on('data', (d: Buffer) => {
      out.push(d);
      if (slowReader) {
        proc.stdout.pause();
        setTimeout(() => proc.stdout.resume(), 2);
      }
    });
    proc.stderr.on('data', (d) => (stderr += d));
    proc.on('error', reject);
    proc.on('close', (code) => resolve({ code, stdout: Buffer.concat(out).toString('utf8'), stderr }));
  });
}

function fleet(count: number) {
  const users = Array.from({ length: 20 }, (_, i) => ({ id: i + 1, name: `u${i}`, login: `u${i}@example.com` }));
  const nodes = Array.from({ length: count }, (_, i) => ({
    id: i + 1,
    name: `node-${String(i).padStart(4, '0')}`,
    user: i % 3 === 0 ? null : `u${i % 20}@example.com`,
    tags: i % 3 === 0 ? ['tag:server'] : [],
    ipv4: `100.64.${i >> 8}.${i & 255}`,
    ipv6: `fd7a:115c:a1e0::${i.toString(16)}`,
    advertisedRoutes: [],
    approvedRoutes: [],
  }));
  return { users, nodes };
}

describe('weft-server policy compile', () => {
  it('writes a multi-megabyte --json result through a slow pipe completely, and exits 0', async () => {
    const nodes = file('big-nodes.json', JSON.stringify(fleet(1200)));
    // No policy rules beyond allow-all: every node sees every other, about 1,200 x 1,200 peer names.
    const policy = file('all.hujson', '{ "acls": [ { "action": "accept", "src": ["*"], "dst": ["*:*"] }, ], }');
    const r = await run(['policy', 'compile', policy, '--nodes', nodes, '--json'], true);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout.length).toBeGreaterThan(8 * 1024 * 1024);
    const parsed = JSON.parse(r.stdout) as { nodes: Record<string, { peers: string[] }> };
    expect(Object.keys(parsed.nodes)).toHaveLength(1200);
    expect(parsed.nodes['node-1199']!.peers).toHaveLength(1199);
  });

  it('rejects a policy with every reason as FILE:line:col on stderr, exit 1, no stack trace', async () => {
    const nodes = file('nodes.json', JSON.stringify(fleet(4)));
    const policy = file('bad.hujson', [
      '{',
      '  "groups": { "group:a": ["group:b"] },',
      '  "acls": [ { "action": "accept", "src": ["group:nope"], "dst": ["tag:web:70000"] } ],',
      '  "ssh": [],',
      '}',
    ].join('\n'));
    const r = await run(['policy', 'compile', policy, '--nodes', nodes]);
    expect(r.code).toBe(1);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain(`${policy}:2:27: group "group:a" contains "group:b"`);
    expect(r.stderr).toContain(`${policy}:3:43: unknown group "group:nope"`);
    expect(r.stderr).toContain(`${policy}:3:66: unknown tag "tag:web"`);
    expect(r.stderr).toContain(`${policy}:3:66: bad port "70000"`);
    expect(r.stderr).toContain(`${policy}:4:3: "ssh" is a Tailscale policy feature Weft does not support yet`);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it('rejects a policy whose own tests fail, naming the test line and the rule that allowed it', async () => {
    const nodes = file('nodes-t.json', JSON.stringify(fleet(4)));
    const policy = file('tests.hujson', [
      '{',
      '  "tagOwners": { "tag:server": [] },',
      '  "acls": [ { "action": "accept", "src": ["u1@example.com"], "dst": ["tag:server:22"] } ],',
      '  "tests": [ { "src": "u1@example.com", "deny": ["tag:server:22"], "accept": ["tag:server:80"] } ],',
      '}',
    ].join('\n'));
    const r = await run(['policy', 'compile', policy, '--nodes', nodes, '--json']);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`${policy}:4:\\d+: test failed: "u1@example.com" can reach "tag:server:22".*rule at line 3`));
    expect(r.stderr).toMatch(new RegExp(`${policy}:4:\\d+: test failed: "u1@example.com" cannot reach "tag:server:80"`));
  });

  it('prints a readable summary without --json', async () => {
    const nodes = file('nodes-s.json', JSON.stringify(fleet(4)));
    const policy = file('s.hujson', '{"tagOwners": {"tag:server": []}, "acls": [{"action": "accept", "src": ["autogroup:member"], "dst": ["tag:server:*"]}]}');
    const r = await run(['policy', 'compile', policy, '--nodes', nodes]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain('policy accepted: 4 nodes');
    expect(r.stdout).toMatch(/node-0000\s+1\s+2\s+node-0001, node-0002/);
  });

  it('exits 2 for usage errors and a malformed nodes file, and documents the shapes in --help', async () => {
    const policy = file('ok.hujson', '{}');
    expect((await run(['policy', 'compile', policy])).code).toBe(2);
    expect((await run(['policy', 'compile', policy, '--nodes', join(dir, 'missing.json')])).code).toBe(2);
    expect((await run(['policy', 'frobnicate'])).code).toBe(2);
    const badNodes = file('bad-nodes.json', '{"users": [], "nodes": [{"id": 1, "name": "a", "user": "ghost@example.com", "tags": [], "ipv4": "1.2.3"}]}');
    const r = await run(['policy', 'compile', policy, '--nodes', badNodes]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain(`${badNodes}:1:`);
    expect(r.stderr).toContain('who is not in "users"');
    const help = await run(['policy', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toContain('NODES_JSON');
    expect(help.stdout).toContain('"dstPorts"');
  });
});
