/** `weft-server`: `serve` runs the control server; everything else is the admin CLI. */
import { DbError } from '@weft/db';
import { admin, ExitCode } from './cli/admin.js';
import { DB_USAGE, NOUN_USAGE, nounUsage, POLICY_USAGE, SERVE_USAGE, USAGE, VERSION_TEXT, type Noun } from './cli/help.js';
import { policyCommand } from './cli/policy.js';
import { dbCommand } from './cli/db.js';
import { ConfigError } from './config.js';
import { serve } from './serve.js';

const isHelp = (a: string | undefined) => a === '--help' || a === '-h' || a === 'help';

const [command, ...rest] = process.argv.slice(2);
if (!command) {
  process.stderr.write(USAGE + '\n');
  process.exit(ExitCode.Usage);
} else if (isHelp(command)) {
  const topic = rest[0];
  if (topic === 'serve') process.stdout.write(SERVE_USAGE + '\n');
  else if (topic === 'policy') process.stdout.write(POLICY_USAGE + '\n');
  else if (topic === 'db' || topic === 'backup' || topic === 'restore') process.stdout.write(DB_USAGE + '\n');
  else if (topic === 'relay-secret') process.stdout.write((await import('./cli/relay-secret.js')).RELAY_SECRET_USAGE + '\n');
  else if (topic && Object.hasOwn(NOUN_USAGE, topic)) process.stdout.write(nounUsage(topic as Noun) + '\n');
  else process.stdout.write(USAGE + '\n');
  process.exit(ExitCode.Ok);
} else if (command === '--version' || command === '-V' || command === 'version') {
  process.stdout.write(VERSION_TEXT + '\n');
  process.exit(ExitCode.Ok);
} else if (command === 'serve') {
  if (rest.includes('--help') || rest.includes('-h')) {
    process.stdout.write(SERVE_USAGE + '\n');
    process.exit(ExitCode.Ok);
  }
  serve(rest).catch((err: unknown) => {
    if (err instanceof ConfigError) {
      process.stderr.write(`weft-server: ${err.message}\n\nRun weft-server serve --help for the flags.\n`);
      process.exit(ExitCode.Usage);
    }
    // A storage error is one line that says what to do (DATA_DIR_NOT_PRIVATE: chmod 700 DIR); anything else, the stack.
    const what = err instanceof DbError ? `${err.message} (${err.code})` : ((err as Error).stack ?? String(err));
    process.stderr.write(`weft-server: failed to start: ${what}\n`);
    process.exit(1);
  });
} else if (command === 'backup' || command === 'restore' || command === 'db') {
  process.exitCode = await dbCommand([command, ...rest]);
} else if (command === 'relay-secret') {
  process.exitCode = await (await import('./cli/relay-secret.js')).relaySecretCommand(rest);
} else if (command === 'doctor') {
  process.exitCode = await (await import('./cli/doctor.js')).doctorCommand(rest);
} else if (command === 'policy') {
  // Offline: no server, no database. The exit code is set, not forced, so stdout drains first.
  process.exitCode = await policyCommand(rest);
} else {
  process.exitCode = await admin([command, ...rest]);
}
