/**
 * `weft-server users suspend|resume|offboard` and `audit list|export` against a real server:
 * human and --json output, the offboard confirmation, exit codes, and an export that is complete
 * when piped.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { admin, ExitCode } from '../../src/cli/admin.js';
import { cli } from '../support/process.js';
import { startServer, type TestServer } from '../support/server.js';

describe('admin CLI: user lifecycle and audit', () => {
  let s: TestServer;
  beforeAll(async () => {
    s = await startServer('pglite');
  });
  afterAll(async () => s?.close());

  /** Runs the CLI in-process against the server by URL; `answers` play the person at a terminal. */
  async function run(args: string[], answers: (string | undefined)[] = []) {
    const out: string[] = [];
    const err: string[] = [];
    const asked: string[] = [];
    const code = await admin([...args, '--server', s.url, '--api-key', s.adminKey], (l) => out.push(l), (l) => err.push(l), async (q) => {
      asked.push(q);
      return answers.shift();
    });
    return { code, stdout: out.join('\n'), stderr: err.join('\n'), asked };
  }

  it('suspend and resume print what they did; users list shows the status', async () => {
    await s.api('POST', '/api/v1/users', { name: 'cli-sue' });
    const key = (await s.api('POST', '/api/v1/authkeys', { user: 'cli-sue' })).body;
    const laptop = new SimAgent(s.url, 'sue-laptop');
    await laptop.register(key.key);
    const sus = await run(['users', 'suspend', 'cli-sue']);
    expect(sus.code, sus.stderr).toBe(ExitCode.Ok);
    expect(sus.stdout).toContain('Suspended cli-sue; devices cut off: sue-laptop');
    expect(sus.stdout).toContain(key.prefix);
    const list = await run(['users', 'list']);
    expect(list.stdout).toMatch(/cli-sue\s.*suspended/);
    const res = await run(['users', 'resume', 'cli-sue', '--json']);
    expect(res.code).toBe(ExitCode.Ok);
    expect(JSON.parse(res.stdout)).toMatchObject({ user: { name: 'cli-sue', status: 'active' }, nodes: [{ name: 'sue-laptop' }] });
    expect((await run(['users', 'suspend', 'nobody-at-all'])).code).toBe(ExitCode.Refused);
    expect((await run(['users', 'suspend'])).code).toBe(ExitCode.Usage);
  });

  it('offboard asks first: "no" or no terminal changes nothing, "yes" or --yes offboards', async () => {
    await s.api('POST', '/api/v1/users', { name: 'cli-otto' });
    const declined = await run(['users', 'offboard', 'cli-otto'], ['no']);
    expect(declined.code).toBe(ExitCode.Usage);
    expect(declined.asked[0]).toContain('Offboard cli-otto?');
    const noTty = await run(['users', 'offboard', 'cli-otto'], [undefined]);
    expect(noTty.code).toBe(ExitCode.Usage);
    expect(noTty.stderr).toContain('--yes');
    expect((await s.api('GET', '/api/v1/users/cli-otto')).body.status).toBe('active');
    const yes = await run(['users', 'offboard', 'cli-otto'], ['yes']);
    expect(yes.code, yes.stderr).toBe(ExitCode.Ok);
    expect(yes.stdout).toContain('Offboarded cli-otto');
    await s.api('POST', '/api/v1/users', { name: 'cli-ola' });
    const flag = await run(['users', 'offboard', 'cli-ola', '--yes', '--json']);
    expect(flag.asked).toEqual([]);
    expect(JSON.parse(flag.stdout).user.status).toBe('offboarded');
  });

  it('audit list filters and --json pages; bad --since is a usage error', async () => {
    const human = await run(['audit', 'list', '--action', 'user.offboard']);
    expect(human.code, human.stderr).toBe(ExitCode.Ok);
    expect(human.stdout).toMatch(/ID\s+TIME\s+ACTOR\s+ORIGIN\s+ACTION/);
    expect(human.stdout).toContain('user:cli-otto');
    const json = JSON.parse((await run(['audit', 'list', '--action', 'user.', '--since', '1h', '--limit', '2', '--json'])).stdout);
    expect(json.items).toHaveLength(2);
    expect(json.next).toBe(json.items[1].id);
    expect((await run(['audit', 'list', '--since', 'yesterday'])).code).toBe(ExitCode.Usage);
    expect((await run(['audit', 'export'])).code).toBe(ExitCode.Usage);
    expect((await run(['audit', '--help'])).stdout).toContain('audit export --since');
  });

  it('audit export writes every matching event as JSON lines, complete through a pipe', async () => {
    for (let i = 0; i < 30; i++) await s.api('POST', '/api/v1/users', { name: `exp-${i}` });
    const all: { id: string }[] = [];
    for (let after: string | null | undefined; ; ) {
      const page = (await s.api('GET', `/api/v1/audit?limit=1000${after ? `&after=${after}` : ''}`)).body;
      all.push(...page.items);
      if (!page.next) break;
      after = page.next;
    }
    // A separate process, stdout a pipe: what a redirect or `| jq` sees.
    const r = await cli(['audit', 'export', '--since', '1970-01-01T00:00:00Z', '--server', s.url, '--api-key', s.adminKey]);
    expect(r.code, r.stderr).toBe(0);
    const lines = r.stdout.trimEnd().split('\n').map((l) => JSON.parse(l) as { id: string });
    expect(lines.map((e) => e.id)).toEqual(all.map((e) => e.id));
    const only = await cli(['audit', 'export', '--since', '1h', '--action', 'user.create', '--target', 'user:exp-7', '--server', s.url, '--api-key', s.adminKey]);
    expect(only.stdout.trimEnd().split('\n').map((l) => JSON.parse(l).target)).toEqual(['user:exp-7']);
  });
});
