/**
 * README.md's quick start, as a new user types it: every line of its first ```sh block, parsed from
 * the README (so the two cannot drift), each in a fresh non-interactive shell (`env -i ... bash -c`)
 * on a clean copy of the repository after the documented install command. Fails on "command not
 * found", on a non-zero exit, and on a printed `weft ...`/`weft-server ...` hint whose command does
 * not exist as typed. The server runs in lab host `server`; host `a` is "another machine": weft
 * there is the packed agent (`npm pack -w apps/agent`, `npm install -g`, README "Install"), with the
 * daemon's default paths (/var/lib/weft, /run/weft) bound to lab directories, so `weft status`
 * with no flags must find `weft daemon` with no flags, as on a real machine.
 *
 * Also: the packed agent (`npm pack -w apps/agent`) installs into an empty prefix and runs.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import type { ExecResult } from './lab/exec.js';
import type { Host } from './lab/host.js';
import type { LabProcess } from './lab/process.js';
import { useLab } from './lab/vitest.js';
import { REPO } from './lab/weft.js';

export interface QuickStartLine {
  /** As written in the README, comment stripped. */
  command: string;
  /** Ends with `&`: a long-running program. */
  background: boolean;
  /** After the "on each machine" comment: runs on the agent host. */
  agent: boolean;
}

/** The first ```sh block after "## Quick start" in README.md. */
export function quickStartLines(readme: string): QuickStartLine[] {
  const section = readme.slice(readme.indexOf('## Quick start'));
  const block = /```sh\n([\s\S]*?)```/.exec(section)?.[1];
  if (!block) throw new Error('README.md: no ```sh block under "## Quick start"');
  let agent = false;
  const out: QuickStartLine[] = [];
  for (const raw of block.split('\n')) {
    const line = raw.trim();
    if (!line) continue;
    if (line.startsWith('#')) {
      if (/on each machine/i.test(line)) agent = true;
      continue;
    }
    const command = line.replace(/\s+#.*$/, '').trim();
    const background = command.endsWith('&');
    out.push({ command: background ? command.slice(0, -1).trim() : command, background, agent });
  }
  return out;
}

const HINT = /(?:^|[\s:`'"(])((?:weft|weft-server)(?: [a-z][a-z-]*)+)/g;
/** `weft ...` / `weft-server ...` commands named in output: program plus its subcommand words. */
export function hintedCommands(output: string): string[] {
  const found = new Set<string>();
  for (const m of output.matchAll(HINT)) {
    const words = m[1]!.split(' ');
    // Prose such as "weft daemon is not running": keep the program and at most two command words.
    found.add(words.slice(0, 3).join(' '));
  }
  return [...found];
}

const ctx = useLab({ name: 'qs', hosts: ['server', 'a'] });

describe('quick-start parsing', () => {
  it('reads commands, background marks and the agent part from the README block', () => {
    const lines = quickStartLines('intro\n## Quick start\n\n```sh\nnpm ci    # deps\nx serve &\n# on each machine (root):\nweft daemon &\nweft status\n```\n```sh\nlater\n```\n');
    expect(lines).toEqual([
      { command: 'npm ci', background: false, agent: false },
      { command: 'x serve', background: true, agent: false },
      { command: 'weft daemon', background: true, agent: true },
      { command: 'weft status', background: false, agent: true },
    ]);
  });

  it('finds the commands a hint names, without their arguments', () => {
    expect(hintedCommands('Next: weft-server authkeys create --user alice\nrun: weft up --server URL\n(weft login)')).toEqual([
      'weft-server authkeys create', 'weft up', 'weft login',
    ]);
  });
});

describe('README quick start', () => {
  // Bounded by the lab's start-up and an embedded database's first creation; ~30 s on an idle machine.
  it('runs as written in fresh shells on a clean copy after npm run install-bin', { timeout: 300_000 }, async () => {
    const lab = ctx.lab;
    const { server, a } = lab.hosts;
    const lines = quickStartLines(readFileSync(join(REPO, 'README.md'), 'utf8'));
    expect(lines.map((l) => l.command)).toContain('npm run install-bin');

    // A clean copy: the tracked (and new, unignored) files, node_modules hardlinked in place of
    // downloading them again. `npm ci` below then does what it does after the download.
    const clone = join(lab.tmpDir, 'clone');
    const prefix = join(lab.tmpDir, 'prefix');
    mkdirSync(clone);
    const files = execFileSync('git', ['ls-files', '-z', '--cached', '--others', '--exclude-standard'], { cwd: REPO, encoding: 'utf8' })
      .split('\0').filter((f) => f && existsSync(join(REPO, f)));
    execFileSync('tar', ['--null', '-T', '-', '-cf', join(lab.tmpDir, 'clone.tar')], { cwd: REPO, input: files.join('\0') });
    execFileSync('tar', ['-xf', join(lab.tmpDir, 'clone.tar'), '-C', clone]);
    for (const nm of ['node_modules', ...readdirSync(join(REPO, 'packages')).map((p) => `packages/${p}/node_modules`), ...readdirSync(join(REPO, 'apps')).map((p) => `apps/${p}/node_modules`)]) {
      execFileSync('bash', ['-c', `if [ -d ${REPO}/${nm} ]; then cp -al ${REPO}/${nm} ${clone}/${nm}; fi`]);
    }
    // The agent's default directories, private to host a (every command there binds the same ones).
    const varLib = join(lab.tmpDir, 'a-var-lib');
    const run = join(lab.tmpDir, 'a-run');
    mkdirSync(varLib);
    mkdirSync(run);

    // What a fresh login shell on a Debian machine has, with the install prefix in front (no
    // /usr/local/bin: a `weft` someone else installed there must not stand in for ours).
    // Host a is "another machine": weft comes from the packed package (README "Install"), in a
    // prefix of its own that has no weft-server.
    const aPrefix = join(lab.tmpDir, 'a-prefix');
    const shellEnv = (host: Host) => [`PATH=${host === a ? aPrefix : prefix}/bin:/usr/sbin:/usr/bin:/sbin:/bin`, `HOME=${lab.tmpDir}`, `PREFIX=${prefix}`, 'LANG=C.UTF-8'];
    const argv = (host: Host, command: string): [string, string[]] => {
      const shell = ['env', '-i', ...shellEnv(host), 'bash', '-c', `cd ${clone} && ${command}`];
      if (host !== a) return [shell[0]!, shell.slice(1)];
      return ['unshare', ['--mount', '--propagation', 'private', 'sh', '-c',
        `mount --bind ${varLib} /var/lib && mount --bind ${run} /run && exec "$@"`, 'sh', ...shell]];
    };
    const transcript: string[] = [];
    const exec = async (host: Host, command: string, timeoutMs = 60_000): Promise<ExecResult> => {
      const [cmd, args] = argv(host, command);
      const r = await host.exec(cmd, args, { timeoutMs });
      transcript.push(`${host.name}$ ${command}\n${r.stdout}${r.stderr}(exit ${r.code})`);
      return r;
    };

    let authKey: string | undefined;
    const substitute = (command: string): string => {
      let c = command;
      if (c === 'npm ci') c = 'npm run postinstall'; // node_modules is in place; the rest of npm ci
      c = c.replaceAll('SERVER', server.ip);
      if (c.includes('weft-auth-...')) {
        expect(authKey, 'an auth key printed by an earlier line').toBeDefined();
        c = c.replaceAll('weft-auth-...', authKey!);
      }
      return c;
    };

    const background: LabProcess[] = [];
    /** What the foreground commands printed to the person (the background ones print logs). */
    const outputs: string[] = [];
    const ok = async (host: Host, command: string) => {
      const r = await exec(host, command, 90_000);
      expect({ command, code: r.code, out: r.code === 0 ? '' : r.stdout + r.stderr }).toEqual({ command, code: 0, out: '' });
    };
    let agentInstalled = false;
    for (const line of lines) {
      const host = line.agent ? a : server;
      if (line.agent && !agentInstalled) {
        agentInstalled = true;
        await ok(server, `npm pack -w apps/agent --pack-destination ${lab.tmpDir}`);
        await ok(a, `npm install -g --offline --prefix ${aPrefix} ${lab.tmpDir}/weft-agent-*.tgz`);
      }
      const command = substitute(line.command);
      if (line.background) {
        const [cmd, args] = argv(host, `exec ${command}`);
        const p = host.spawn(cmd, args, { logName: command.split(' ').slice(0, 2).join('-') });
        background.push(p);
        // Both programs log a "listening" line once they serve (weft-server: Fastify's; weft daemon: its own).
        await p.waitForLine(/listening/i, 90_000).catch((err: Error) => {
          throw new Error(`${host.name}$ ${command}: ${err.message}\n${p.tail(20)}`);
        });
        continue;
      }
      const r = await exec(host, command, 90_000);
      const out = r.stdout + r.stderr;
      outputs.push(out);
      expect(out, `${host.name}$ ${command}`).not.toMatch(/command not found/);
      expect({ command, code: r.code, out: r.code === 0 ? '' : out }).toEqual({ command, code: 0, out: '' });
      authKey ??= /weft-auth-[A-Za-z0-9_-]{8,}/.exec(r.stdout)?.[0];
    }
    for (const p of background) expect(p.output(), p.output()).not.toMatch(/command not found/);

    // Every command the outputs name exists as typed, in the same kind of shell.
    const hints = [...new Set(outputs.flatMap(hintedCommands))];
    writeFileSync(lab.logPath('test', 'transcript'), `${transcript.join('\n\n')}\n\nhints checked: ${hints.join(', ')}\n`);
    for (const hint of hints) {
      const r = await exec(server, `${hint} --help`);
      expect({ hint, code: r.code, out: r.code === 0 ? '' : r.stdout + r.stderr }).toEqual({ hint, code: 0, out: '' });
    }

    // The node the README joined is up: `weft status` with no flags found the daemon with no flags.
    const status = await exec(a, 'weft status --json');
    expect(JSON.parse(status.stdout)).toMatchObject({ state: 'running', online: true, self: { user: 'alice' } });
  });

  it('the packed agent installs into an empty prefix and runs from there', { timeout: 180_000 }, async () => {
    const lab = ctx.lab;
    const out = join(lab.tmpDir, 'pack');
    const prefix = join(lab.tmpDir, 'pack-prefix');
    mkdirSync(out);
    execFileSync('npm', ['pack', '-w', 'apps/agent', '--pack-destination', out], { cwd: REPO, stdio: 'pipe', timeout: 90_000 });
    const tgz = readdirSync(out).filter((f) => /^weft-agent-.*\.tgz$/.test(f));
    expect(tgz).toHaveLength(1);
    // No registry: the package must need nothing but itself.
    execFileSync('npm', ['install', '-g', '--offline', '--prefix', prefix, join(out, tgz[0]!)], { cwd: out, stdio: 'pipe', timeout: 90_000 });
    const fresh = (command: string) => execFileSync('env', ['-i', `PATH=${prefix}/bin:/usr/bin:/bin`, `HOME=${lab.tmpDir}`, 'bash', '-c', `cd / && ${command}`],
      { encoding: 'utf8', timeout: 30_000, stdio: ['ignore', 'pipe', 'pipe'] });
    expect(fresh('weft --version')).toMatch(/^weft \d+\.\d+\.\d+ \(control protocol \d+\)\n$/);
    expect(fresh('weft --help')).toContain('usage: weft <command>');
    expect(fresh('weft status --help')).toContain('weft status');
    const listing = execFileSync('tar', ['-tzf', join(out, tgz[0]!)], { encoding: 'utf8' });
    expect(listing).not.toMatch(/package\/src\//);
    expect(JSON.parse(readFileSync(join(prefix, 'lib/node_modules/@weft/agent/package.json'), 'utf8')).dependencies).toBeUndefined();
  });
});
