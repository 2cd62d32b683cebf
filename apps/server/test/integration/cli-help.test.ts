/** `weft-server --help` and `--version` at every level: no server, one CLI process per case. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { PROTOCOL_VERSION } from '@weft/protocol';
import { describe, expect, it } from 'vitest';
import { cli } from '../support/process.js';

describe('weft-server --help and --version answer at every level', () => {
  it.each([
    [['--help']], [['-h']], [['help']], [['help', 'nodes']], [['serve', '--help']], [['nodes', '--help']], [['users', '--help']],
    [['authkeys', '--help']], [['apikeys', 'help']], [['nodes', 'approve', '--help']], [['authkeys', 'create', '--help']],
  ])('weft-server %j exits 0 with usage on stdout', async (args) => {
    const r = await cli(args);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^Usage/);
    expect(r.stderr).toBe('');
  });

  it('serve --help lists --log-format; nodes --help lists approve and add-peer', async () => {
    expect((await cli(['serve', '--help'])).stdout).toContain('--log-format json|pretty');
    const nodes = (await cli(['nodes', '--help'])).stdout;
    expect(nodes).toContain('nodes approve CODE');
    expect(nodes).toContain('nodes add-peer HOSTNAME');
  });

  it('--version prints the package version and the agent protocol version', async () => {
    const pkg = JSON.parse(readFileSync(join(import.meta.dirname, '../../package.json'), 'utf8')) as { version: string };
    const r = await cli(['--version']);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`weft-server ${pkg.version} (agent protocol ${PROTOCOL_VERSION})\n`);
  });
});
