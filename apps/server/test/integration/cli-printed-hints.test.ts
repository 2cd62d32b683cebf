/** Every command line the server and the CLI print as a next step runs as typed, against a real server process. */
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SimAgent } from '../../../../test-support/sim-agent.js';
import { cli, SERVER_BIN, spawnServer, type ServerProcess } from '../support/process.js';

/** The words of a printed command line (the hints quote nothing in these tests' paths). */
function words(line: string): string[] {
  const w = line.trim().split(/\s+/);
  expect(line).not.toMatch(/['"]/);
  return w;
}

/** Runs a printed `weft-server ...` line as typed. */
async function runPrinted(line: string, opts: { cwd?: string; env?: Record<string, string> } = {}) {
  const [program, ...args] = words(line);
  expect(program).toBe('weft-server');
  return cli(args, opts);
}

/** The indented command lines under the first line of `text` that contains `heading`. */
function commandsAfter(text: string, heading: string): string[] {
  const lines = text.split('\n');
  const at = lines.findIndex((l) => l.includes(heading));
  expect(at, `"${heading}" in:\n${text}`).toBeGreaterThanOrEqual(0);
  const out: string[] = [];
  for (const l of lines.slice(at + 1)) {
    if (!l.startsWith('  ')) break;
    out.push(l.trim());
  }
  return out;
}

/** Runs `weft-server` on a pseudo-terminal (util-linux script), typing `input`. */
function onTerminal(args: string[], input: string, cwd: string): Promise<{ code: number; output: string }> {
  return new Promise((res) => {
    const p = spawn('script', ['-qec', [process.execPath, SERVER_BIN, ...args].join(' '), '/dev/null'], { cwd, stdio: ['pipe', 'pipe', 'pipe'] });
    let output = '';
    p.stdout.on('data', (d) => {
      output += d;
      if (output.includes('User: ') && input) {
        p.stdin.write(input);
        input = '';
      }
    });
    p.stderr.on('data', (d) => (output += d));
    p.on('exit', (code) => {
      p.stdin.destroy();
      res({ code: code ?? -1, output });
    });
  });
}

describe('every printed hint works as typed', () => {
  let s: ServerProcess;
  let home: string;
  beforeAll(async () => {
    // The server's data dir is ./data of `home`, so the agent's hint (no --data-dir) is typed there.
    home = mkdtempSync(join(tmpdir(), 'weft-hints-'));
    s = await spawnServer({}, join(home, 'data'), ['--log-level', 'info']);
  });
  afterAll(async () => {
    await s?.stop();
    if (home) rmSync(home, { recursive: true, force: true });
  });

  it('the start-up hint on an empty server adds the first user and an auth key; the key joins at the URL printed', async () => {
    const hints = commandsAfter(s.output(), 'Add the first user');
    expect(hints).toHaveLength(2);
    const user = await runPrinted(hints[0]!, { cwd: tmpdir() });
    expect(user.code, user.stderr).toBe(0);
    const key = await runPrinted(hints[1]!, { cwd: tmpdir() });
    expect(key.code, key.stderr).toBe(0);
    const join = commandsAfter(key.stdout, 'Join a device with')[0]!;
    const [weft, up, serverFlag, url, authFlag, authKey] = words(join);
    expect([weft, up, serverFlag, authFlag]).toEqual(['weft', 'up', '--server', '--auth-key']);
    expect(url).toBe(s.url);
    const agent = new SimAgent(url!, 'from-hint');
    expect((await agent.register(authKey)).status).toBe('registered');
  });

  it('users create prints a next step with the --data-dir it was given, and that step works from anywhere', async () => {
    const r = await cli(['users', 'create', 'bob', '--data-dir', s.dataDir]);
    expect(r.code, r.stderr).toBe(0);
    const next = commandsAfter(r.stdout, 'Next')[0]!;
    expect(next).toBe(`weft-server authkeys create --user bob --data-dir ${s.dataDir}`);
    const ran = await runPrinted(next, { cwd: tmpdir() });
    expect(ran.code, ran.stderr).toBe(0);
    expect(ran.stdout).toMatch(/^weft-auth-/);
  });

  it('over --server, the next step names the server and a KEY placeholder the CLI explains; WEFT_API_KEY needs no flag', async () => {
    const apiKey = JSON.parse((await cli(['apikeys', 'create', '--scopes', 'admin', '--json', '--data-dir', s.dataDir])).stdout).key as string;
    const r = await cli(['users', 'create', 'carol', '--server', s.url, '--api-key', apiKey]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).not.toContain(apiKey);
    const next = commandsAfter(r.stdout, 'Next')[0]!;
    expect(next).toBe(`weft-server authkeys create --user carol --server ${s.url} --api-key KEY`);
    const literal = await runPrinted(next);
    expect(literal.code).toBe(2);
    expect(literal.stderr).toContain('--api-key KEY in a printed command stands for your API key');
    expect((await runPrinted(next.replace(/KEY$/, apiKey))).code).toBe(0);

    const viaEnv = await cli(['users', 'create', 'dave', '--server', s.url], { env: { WEFT_API_KEY: apiKey } });
    const envNext = commandsAfter(viaEnv.stdout, 'Next')[0]!;
    expect(envNext).toBe(`weft-server authkeys create --user dave --server ${s.url}`);
    expect((await runPrinted(envNext, { env: { WEFT_API_KEY: apiKey } })).code).toBe(0);
  });

  it("`weft-server nodes approve CODE` as weft up prints it, with several users: a script is given commands that work", async () => {
    const device = new SimAgent(s.url, 'scripted');
    const pending = await device.register();
    expect(pending.status).toBe('pending');
    const code = (pending as { code: string }).code;
    // What `weft up` prints: "ask an admin to run: weft-server nodes approve CODE" (no flags).
    const asPrinted = await runPrinted(`weft-server nodes approve ${code}`, { cwd: home });
    expect(asPrinted.code).toBe(2);
    expect(asPrinted.stderr).toContain(`scripted (${code}) could belong to any of`);
    const choices = commandsAfter(asPrinted.stderr, 'approve it as one of them');
    expect(choices).toContain(`weft-server nodes approve ${code} --user bob`);
    const approved = await runPrinted(`weft-server nodes approve ${code} --user bob`, { cwd: home });
    expect(approved.code, approved.stderr).toBe(0);
    expect(approved.stdout).toContain('joined as bob');
    const done = await device.register();
    expect(done.status).toBe('registered');
    expect(device.self!.user).toBe('bob');
  });

  it('`weft-server nodes approve CODE` on a terminal asks whose device it is, and approves it as the answer', async () => {
    const device = new SimAgent(s.url, 'interactive');
    const code = ((await device.register()) as { code: string }).code;
    const r = await onTerminal(['nodes', 'approve', code], 'carol\n', home);
    expect(r.code, r.output).toBe(0);
    expect(r.output).toContain(`Which user owns interactive (${code})?`);
    expect(r.output).toContain('joined as carol');
    await device.register();
    expect(device.self!.user).toBe('carol');
  });

  it('with one request per line at debug only: info shows no request lines; the logs are JSON when not a terminal', () => {
    const lines = s.output().split('\n').filter((l) => l.startsWith('{'));
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(() => JSON.parse(l)).not.toThrow();
    expect(s.output()).not.toContain('request completed');
    expect(s.output()).not.toContain('incoming request');
  });

  it('on restart with users, the hint shows counts and commands that work instead of "Add the first user"', async () => {
    await s.stop();
    s = await spawnServer({ WEFT_LOG_FORMAT: 'pretty' }, join(home, 'data'), ['--log-level', 'debug']);
    expect(s.output()).not.toContain('Add the first user');
    expect(s.output()).toMatch(/4 users, \d+ nodes\./);
    for (const hint of commandsAfter(s.output(), 'See them')) {
      const r = await runPrinted(hint, { cwd: tmpdir() });
      expect(r.code, `${hint}\n${r.stderr}`).toBe(0);
    }
    // Pretty lines (WEFT_LOG_FORMAT), and each request at debug as one line.
    expect(s.output()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} DEBUG incoming request {2}.*req=\{"method":"GET","url":"\/readyz"/m);
    expect(s.output()).toMatch(/^\d\d:\d\d:\d\d\.\d{3} DEBUG request completed {2}.*res=\{"statusCode":200\}/m);
    expect(s.output()).not.toMatch(/^\{"level"/m);
  });
});
