import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { helpText, parse, commands } from '../../src/cli/args.js';
import { CliError, ExitCode, exitCodeFor, hintFor, statusExitCode } from '../../src/cli/exit-codes.js';
import { DEFAULT_SOCKET, SOCKET_LOOKUP, resolveSocket } from '../../src/paths.js';
import type { State } from '../../src/status.js';
import { RegisterErrorCode } from '@weft/protocol';

const usage = (argv: string[]) => {
  try {
    parse(argv);
  } catch (err) {
    expect(err).toBeInstanceOf(CliError);
    return (err as CliError).exitCode;
  }
  throw new Error('expected a usage error');
};

describe('CLI arguments', () => {
  it('parses up with every flag', () => {
    expect(parse(['up', '--server', 'http://10.77.0.1:8080', '--auth-key', 'k', '--hostname', 'h', '--json', '--socket', '/s', '--timeout', '30'])).toEqual({
      command: 'up', help: false, json: true, server: 'http://10.77.0.1:8080', authKey: 'k', hostname: 'h', socket: '/s', timeoutS: 30,
    });
  });

  it('makes --ca-file absolute, since the daemon reads it from its own working directory', () => {
    expect(parse(['up', '--server', 'https://w.example', '--ca-file', 'certs/ca.pem']).caFile).toBe(join(process.cwd(), 'certs/ca.pem'));
    expect(parse(['login', '--ca-file', '/etc/weft/ca.pem']).caFile).toBe('/etc/weft/ca.pem');
  });

  it('parses daemon flags and validates their values', () => {
    expect(parse(['daemon', '--state-dir', '/d', '--wg-backend', 'userspace', '--interface', 'wg1', '--listen-port', '51820', '--mtu', '1420', '--log-format', 'text'])).toMatchObject({
      command: 'daemon', stateDir: '/d', backend: 'userspace', interfaceName: 'wg1', listenPort: 51820, mtu: 1420, logFormat: 'text',
    });
    expect(usage(['daemon', '--wg-backend', 'magic'])).toBe(ExitCode.Usage);
    expect(usage(['daemon', '--listen-port', '70000'])).toBe(ExitCode.Usage);
    expect(usage(['daemon', '--mtu', '576'])).toBe(ExitCode.Usage);
    expect(usage(['daemon', '--interface', 'way-too-long-interface'])).toBe(ExitCode.Usage);
  });

  it('rejects unknown commands, unknown flags, positionals and missing values', () => {
    expect(usage(['frobnicate'])).toBe(ExitCode.Usage);
    expect(usage(['status', '--bogus'])).toBe(ExitCode.Usage);
    expect(usage(['status', 'extra'])).toBe(ExitCode.Usage);
    expect(usage(['up', '--server'])).toBe(ExitCode.Usage);
    expect(usage(['down', '--server', 'x'])).toBe(ExitCode.Usage);
  });

  it('ping takes one peer and -c N (default 3); no peer, two peers or a bad count is a usage error', () => {
    expect(parse(['ping', 'db-1'])).toMatchObject({ command: 'ping', target: 'db-1', count: 3, json: false });
    expect(parse(['ping', '100.64.0.2', '-c', '10', '--json'])).toMatchObject({ target: '100.64.0.2', count: 10, json: true });
    expect(usage(['ping'])).toBe(ExitCode.Usage);
    expect(usage(['ping', 'a', 'b'])).toBe(ExitCode.Usage);
    expect(usage(['ping', 'a', '-c', '0'])).toBe(ExitCode.Usage);
    expect(usage(['ping', 'a', '-c', 'x'])).toBe(ExitCode.Usage);
  });

  it('every command has --help, --socket and --state-dir', () => {
    for (const name of Object.keys(commands)) {
      expect(parse([name, '--help']).help).toBe(true);
      expect(parse([name, '-h']).help).toBe(true);
      const operand = name === 'ping' ? ['peer-b'] : [];
      expect(parse([name, ...operand, '--socket', '/x', '--state-dir', '/y'])).toMatchObject({ socket: '/x', stateDir: '/y' });
      expect(helpText(name as keyof typeof commands)).toContain(`weft ${name}`);
    }
    expect(parse([])).toMatchObject({ command: 'help' });
    expect(parse(['help', 'status'])).toMatchObject({ command: 'help', topic: 'status' });
  });

  it('finds the socket from --socket, $WEFT_SOCKET, --state-dir, then the default', () => {
    expect(resolveSocket({ socket: '/a', stateDir: '/b' }, { WEFT_SOCKET: '/c' })).toBe('/a');
    expect(resolveSocket({ stateDir: '/b' }, { WEFT_SOCKET: '/c' })).toBe('/c');
    expect(resolveSocket({ stateDir: '/b' }, {})).toBe('/b/weftd.sock');
    expect(resolveSocket({}, {})).toBe('/run/weft/weftd.sock');
  });

  it('weft --help lists the socket lookup in the order resolveSocket applies it', () => {
    const help = helpText();
    const at = SOCKET_LOOKUP.map((s) => help.indexOf(s.describe));
    expect(at.every((i) => i >= 0)).toBe(true);
    expect([...at].sort((a, b) => a - b)).toEqual(at);
    expect(SOCKET_LOOKUP.map((s) => s.describe)).toEqual(['--socket PATH', '$WEFT_SOCKET', 'DIR/weftd.sock with --state-dir DIR', DEFAULT_SOCKET]);
  });

  it('help answers at every level, also as `weft help --help`', () => {
    expect(parse(['help', '--help'])).toMatchObject({ command: 'help' });
    expect(parse(['help', '--help']).topic).toBeUndefined();
    expect(parse(['--version'])).toMatchObject({ command: 'version' });
  });
});

describe('error -> exit code', () => {
  it('maps every register error the server can send to a distinct, documented code', () => {
    const codes = Object.values(RegisterErrorCode).map(exitCodeFor);
    expect(codes).toEqual([
      ExitCode.AuthKeyInvalid, ExitCode.AuthKeyExpired, ExitCode.AuthKeyUsed, ExitCode.AuthKeyRevoked,
      ExitCode.NodeRevoked, ExitCode.NodeExpired, ExitCode.LoginExpired, ExitCode.UserSuspended,
    ]);
    for (const code of Object.values(RegisterErrorCode)) expect(hintFor(code)).toBeTruthy();
  });

  it('maps agent-side conditions', () => {
    expect(exitCodeFor('node_revoked')).toBe(ExitCode.NodeRevoked);
    expect(exitCodeFor('server_unreachable')).toBe(ExitCode.ServerUnreachable);
    expect(exitCodeFor('not_logged_in')).toBe(ExitCode.NotLoggedIn);
    expect(exitCodeFor('something_new')).toBe(ExitCode.Generic);
  });

  it('a retryable 503 from the server (database_busy) is "server unreachable", with a hint to run it again', () => {
    expect(exitCodeFor('database_busy')).toBe(ExitCode.ServerUnreachable);
    expect(hintFor('database_busy')).toMatch(/again/);
    expect(exitCodeFor('server_certificate')).toBe(ExitCode.ServerCertificate);
  });

  it('weft status exits 0 only while running; every other state has its own documented code', () => {
    const states: State[] = ['running', 'starting', 'needs-login', 'stopped', 'revoked', 'expired'];
    expect(Object.fromEntries(states.map((s) => [s, statusExitCode(s)]))).toEqual({
      running: ExitCode.Ok, starting: ExitCode.Starting, 'needs-login': ExitCode.NotLoggedIn,
      stopped: ExitCode.Stopped, revoked: ExitCode.NodeRevoked, expired: ExitCode.NodeExpired,
    });
    for (const s of states.slice(1)) expect(helpText('status')).toContain(`${statusExitCode(s)} ${s === 'needs-login' ? 'needs login' : s}`);
  });

  it('exit codes are unique', () => {
    const values = Object.values(ExitCode);
    expect(new Set(values).size).toBe(values.length);
  });
});
