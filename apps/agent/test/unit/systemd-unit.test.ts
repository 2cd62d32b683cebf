/**
 * deploy/systemd/weft.service and the CLI find each other: the daemon the unit starts listens
 * where `weft status` with no flags looks, keeps its state where the daemon defaults to, and the
 * "no daemon" hint names the unit by its file name.
 */
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { parse } from '../../src/cli/args.js';
import { DEFAULT_STATE_DIR, SYSTEMD_UNIT, resolveSocket } from '../../src/paths.js';

const unitFile = (name: string) => readFileSync(new URL(`../../../../deploy/systemd/${name}`, import.meta.url), 'utf8');

function directives(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const line of text.split('\n')) {
    const m = /^([A-Za-z]+)=(.*)$/.exec(line.trim());
    if (m) out.set(m[1]!, m[2]!);
  }
  return out;
}

describe('deploy/systemd/weft.service', () => {
  const unit = directives(unitFile(`${SYSTEMD_UNIT}.service`));

  it('starts a daemon whose socket is the one `weft status` finds with no flags', () => {
    const [bin, ...argv] = unit.get('ExecStart')!.split(/\s+/);
    expect(bin).toBe('/usr/local/bin/weft');
    const daemon = parse(argv);
    expect(daemon.command).toBe('daemon');
    const cliSocket = resolveSocket(parse(['status']), {});
    expect(resolveSocket(daemon, {})).toBe(cliSocket);
    expect(cliSocket).toBe(`/run/${unit.get('RuntimeDirectory')}/weftd.sock`);
    expect(daemon.stateDir ?? DEFAULT_STATE_DIR).toBe(`/var/lib/${unit.get('StateDirectory')}`);
  });
});

describe('deploy/systemd/weft-server.service', () => {
  it('runs weft-server from where npm run install-bin puts it, with its data in its StateDirectory', () => {
    const unit = directives(unitFile('weft-server.service'));
    const [bin, command, ...rest] = unit.get('ExecStart')!.split(/\s+/);
    expect([bin, command]).toEqual(['/usr/local/bin/weft-server', 'serve']);
    expect(rest[rest.indexOf('--data-dir') + 1]).toBe(`/var/lib/${unit.get('StateDirectory')}`);
  });
});
