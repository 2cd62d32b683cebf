/** `weft-server`: `serve` runs the control server; everything else is the admin CLI. */
import { DbError } from '@weft/db';
import { admin, ADMIN_USAGE, ExitCode } from './cli/admin.js';
import { ConfigError } from './config.js';
import { serve } from './serve.js';

const USAGE = `Usage:
  weft-server serve [--config FILE] [--listen HOST:PORT] [--data-dir DIR] [--database-url URL] [--server-url URL] [--log-level LEVEL]
    Config comes from the JSON file, then WEFT_* environment variables (WEFT_LISTEN, WEFT_DATA_DIR,
    WEFT_DATABASE_URL or DATABASE_URL, WEFT_SERVER_URL, WEFT_LOG_LEVEL), then flags.
${ADMIN_USAGE}`;

const [command, ...rest] = process.argv.slice(2);
if (!command || command === '--help' || command === '-h' || command === 'help') {
  process.stdout.write(USAGE + '\n');
  process.exit(command ? ExitCode.Ok : ExitCode.Usage);
} else if (command === 'serve') {
  serve(rest).catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`weft-server: ${err.message}\n`);
      process.exit(ExitCode.Usage);
    }
    // A storage error is one line that says what to do (DATA_DIR_NOT_PRIVATE: chmod 700 DIR); anything else, the stack.
    const what = err instanceof DbError ? `${err.message} (${err.code})` : ((err as Error).stack ?? String(err));
    process.stderr.write(`weft-server: failed to start: ${what}\n`);
    process.exit(1);
  });
} else {
  process.exitCode = await admin([command, ...rest]);
}
