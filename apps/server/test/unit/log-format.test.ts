import { describe, expect, it } from 'vitest';
import { createLogger, prettyLine } from '../../src/log.js';

/** A destination that records what pino writes, optionally claiming to be a terminal. */
function sink(isTTY: boolean) {
  const lines: string[] = [];
  return { lines, isTTY, write: (s: string) => lines.push(s) };
}

describe('server log format', () => {
  it('is readable lines on a terminal and JSON otherwise, unless told', () => {
    const tty = sink(true);
    createLogger({ level: 'info', out: tty }).info({ node: 'laptop' }, 'node connected');
    expect(tty.lines[0]).toMatch(/^\d\d:\d\d:\d\d\.\d{3} \x1b\[32mINFO \x1b\[0m node connected {2}node=laptop\n$/);

    const pipe = sink(false);
    createLogger({ level: 'info', out: pipe }).info({ node: 'laptop' }, 'node connected');
    expect(JSON.parse(pipe.lines[0]!)).toMatchObject({ level: 30, msg: 'node connected', node: 'laptop' });

    const forcedJson = sink(true);
    createLogger({ level: 'info', format: 'json', out: forcedJson }).info('x');
    expect(JSON.parse(forcedJson.lines[0]!)).toMatchObject({ msg: 'x' });

    const forcedPretty = sink(false);
    createLogger({ level: 'info', format: 'pretty', out: forcedPretty }).warn('y');
    expect(forcedPretty.lines[0]).toMatch(/^\S+ WARN  y\n$/);
  });

  it('redacts bearer tokens and keys in both formats', () => {
    for (const format of ['json', 'pretty'] as const) {
      const out = sink(false);
      createLogger({ level: 'info', format, out }).info({ req: { headers: { authorization: 'Bearer weft-api-secret' } }, body: { authKey: 'weft-auth-secret' } }, 'r');
      expect(out.lines.join('')).not.toContain('secret');
    }
  });

  it('shows an error message and its stack, and escapes control characters agents put in fields', () => {
    const err = new Error('boom');
    const line = prettyLine(JSON.stringify({ level: 50, time: 0, pid: 1, hostname: 'h', msg: 'failed', err: { message: err.message, stack: err.stack, code: 'E1' }, host: 'evil\u001b]0;x\u0007' }));
    expect(line).toMatch(/^00:00:00\.000 ERROR failed {2}err=boom err\.code=E1 host=evil\\x1b\]0;x\\x07\n {4}at /);
    expect(line).not.toContain('\u001b');
    expect(line).not.toContain('pid=');
  });

  it('quotes values with spaces and keeps a line that is not JSON as text', () => {
    expect(prettyLine(JSON.stringify({ level: 30, time: 0, msg: 'm', reason: 'two words', n: 3, o: { a: 1 } }))).toBe('00:00:00.000 INFO  m  reason="two words" n=3 o={"a":1}\n');
    expect(prettyLine('not json\u001b[2J\n')).toBe('not json\\x1b[2J\n');
  });
});
