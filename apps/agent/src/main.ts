/** `weft` entry point: parse, run one command, print errors a person can act on, exit. */
import { readFileSync } from 'node:fs';
import { parse, helpText } from './cli/args.js';
import { join } from './cli/commands/join.js';
import { down, logout, status } from './cli/commands/simple.js';
import { CliError, ExitCode, exitCodeFor, hintFor } from './cli/exit-codes.js';
import { LocalClient } from './cli/local-client.js';
import { resolveSocket } from './paths.js';

async function run(argv: string[]): Promise<number> {
  const args = parse(argv);
  if (args.command === 'help' || args.help) {
    process.stdout.write(helpText(args.command === 'help' ? args.topic : args.command === 'version' ? undefined : args.command));
    return ExitCode.Ok;
  }
  if (args.command === 'version') {
    // ../package.json from src/ and from dist/ alike (also in the packed package).
    const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };
    const { PROTOCOL_VERSION } = await import('@weft/protocol');
    process.stdout.write(`weft ${pkg.version} (control protocol ${PROTOCOL_VERSION})\n`);
    return ExitCode.Ok;
  }
  // Loaded only here: the daemon pulls in @weft/wg and the control client, which the quick CLI
  // commands do not need (about 2 s of start-up under tsx).
  if (args.command === 'daemon') return (await import('./cli/commands/daemon.js')).daemon(args);
  const client = new LocalClient(resolveSocket(args));
  switch (args.command) {
    case 'up':
    case 'login':
      return join(args, client);
    case 'status':
      return status(args, client);
    case 'netcheck':
      return (await import('./cli/commands/netcheck.js')).netcheck(args, client);
    case 'doctor':
      return (await import('./cli/commands/doctor.js')).doctor(args, client);
    case 'metrics':
      return (await import('./cli/commands/metrics.js')).metrics(args, client);
    case 'ping':
      return (await import('./cli/commands/ping.js')).ping(args, client);
    case 'down':
      return down(args, client);
    case 'logout':
      return logout(args, client);
  }
}

function report(err: unknown): number {
  if (err instanceof CliError) {
    process.stderr.write(`weft: ${err.message}\n${err.hint ? `${err.hint}\n` : ''}`);
    return err.exitCode;
  }
  const daemonCode = (err as { daemonCode?: string }).daemonCode;
  if (daemonCode) {
    const hint = hintFor(daemonCode);
    process.stderr.write(`weft: ${(err as Error).message}\n${hint ? `${hint}\n` : ''}`);
    return exitCodeFor(daemonCode);
  }
  process.stderr.write(`weft: ${(err as Error).stack ?? String(err)}\n`);
  return ExitCode.Generic;
}

process.on('SIGINT', () => process.exit(ExitCode.Interrupted));
run(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => process.exit(report(err)),
);
