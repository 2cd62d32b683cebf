/**
 * Reads a password for `weft-server admin set-password`: from the terminal without echo (asked
 * twice), or, when stdin is not a terminal, its first line (`printf '%s\n' "$PW" | weft-server
 * admin set-password`). Never from argv: a flag would show in `ps` and the shell's history.
 */
import { UsageError } from './args.js';

async function readHidden(prompt: string): Promise<string> {
  const stdin = process.stdin;
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  stdin.setEncoding('utf8');
  try {
    return await new Promise<string>((resolve, reject) => {
      let value = '';
      const onData = (chunk: string) => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            process.stderr.write('\n');
            return resolve(value);
          }
          if (ch === '\u0003' || ch === '\u0004') {
            stdin.off('data', onData);
            process.stderr.write('\n');
            return reject(new UsageError('cancelled; nothing was changed'));
          }
          if (ch === '\u007f' || ch === '\b') value = value.slice(0, -1);
          else value += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
}

async function readFirstLine(): Promise<string> {
  let data = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) {
    data += chunk as string;
    if (data.includes('\n') || data.length > 4096) break;
  }
  return data.split(/\r?\n/)[0]!;
}

export async function readPassword(): Promise<string> {
  if (!process.stdin.isTTY) return readFirstLine();
  const first = await readHidden('New password (at least 12 characters): ');
  const again = await readHidden('Again: ');
  if (first !== again) throw new UsageError('the two passwords differ; nothing was changed');
  return first;
}
