/** Daemon logs: one line per event on stderr, JSON lines (for machines) or readable text. */
export type LogLevel = 'debug' | 'info' | 'warn' | 'error';
export type LogFormat = 'json' | 'text';
export type Logger = (level: LogLevel, msg: string, fields?: Record<string, unknown>) => void;

export function createLogger(format: LogFormat, write: (line: string) => void = (l) => process.stderr.write(l)): Logger {
  return (level, msg, fields) => {
    const time = new Date().toISOString();
    if (format === 'json') {
      write(JSON.stringify({ time, level, msg, ...fields }) + '\n');
      return;
    }
    const extra = fields && Object.keys(fields).length
      ? ' ' + Object.entries(fields).map(([k, v]) => `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`).join(' ')
      : '';
    write(`${time} ${level.toUpperCase().padEnd(5)} ${msg}${extra}\n`);
  };
}

export const silentLogger: Logger = () => {};
