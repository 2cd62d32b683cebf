/**
 * The server's pino logger: JSON lines for collectors, or readable lines for a person at a
 * terminal. The pretty form is a plain destination stream in this process (not a pino worker
 * transport, which would have to find its own module beside the esbuild bundle).
 */
import pino, { type Logger } from 'pino';
import { terminalSafe } from '@weft/protocol/terminal-text';

export type LogFormat = 'json' | 'pretty';

/** Never logged: bearer tokens and key material that a log object might carry. */
const REDACT = ['req.headers.authorization', '*.authKey', '*.key'];

interface Sink { write(s: string): unknown; isTTY?: boolean }

/** `format` absent = pretty when `out` is a terminal, json otherwise. */
export function createLogger(opts: { level: string; format?: LogFormat | undefined; out?: Sink }): Logger {
  const out = opts.out ?? process.stdout;
  const format = opts.format ?? (out.isTTY ? 'pretty' : 'json');
  const base = { level: opts.level, redact: REDACT };
  if (format === 'json') return out === process.stdout ? pino(base) : pino(base, out as pino.DestinationStream);
  const colour = Boolean(out.isTTY) && !process.env.NO_COLOR;
  return pino(base, { write: (line: string) => out.write(prettyLine(line, colour)) });
}

const LEVELS: Record<number, [name: string, colour: string]> = {
  10: ['TRACE', '90'], 20: ['DEBUG', '36'], 30: ['INFO ', '32'], 40: ['WARN ', '33'], 50: ['ERROR', '31'], 60: ['FATAL', '35'],
};

/** Fields every line has and the pretty form leaves out. */
const OMIT = new Set(['level', 'time', 'msg', 'pid', 'hostname', 'v']);

/**
 * One pino JSON line as `12:04:05.123 INFO  message key=value ...`, with an error's stack on the
 * lines after it. Values are made terminal-safe: log fields carry hostnames agents chose.
 */
export function prettyLine(json: string, colour = false): string {
  let o: Record<string, unknown>;
  try {
    o = JSON.parse(json) as Record<string, unknown>;
  } catch {
    return terminalSafe(json.trimEnd()) + '\n';
  }
  const time = typeof o.time === 'number' ? new Date(o.time).toISOString().slice(11, 23) : '';
  const [name, code] = LEVELS[o.level as number] ?? [String(o.level), '0'];
  const level = colour ? `\x1b[${code}m${name}\x1b[0m` : name;
  const fields: string[] = [];
  let stack = '';
  for (const [k, v] of Object.entries(o)) {
    if (OMIT.has(k) || v === undefined) continue;
    if ((k === 'err' || k === 'error') && v && typeof v === 'object' && 'message' in v) {
      const e = v as { message: unknown; stack?: unknown; code?: unknown };
      fields.push(`${k}=${quote(String(e.message))}${e.code !== undefined ? ` ${k}.code=${quote(String(e.code))}` : ''}`);
      if (typeof e.stack === 'string') stack = '\n' + e.stack.split('\n').slice(1).map((l) => `    ${terminalSafe(l.trim())}`).join('\n');
      continue;
    }
    fields.push(`${k}=${quote(typeof v === 'string' ? v : JSON.stringify(v))}`);
  }
  const msg = typeof o.msg === 'string' ? terminalSafe(o.msg) : '';
  return `${time} ${level} ${msg}${fields.length ? '  ' + fields.join(' ') : ''}${stack}\n`;
}

function quote(v: string): string {
  const safe = terminalSafe(v);
  return /^\S+$/.test(safe) ? safe : `"${safe.replace(/"/g, '\\"')}"`;
}
