/** What the benches do with a `weft-server` process and a forked fleet (control, offboard, relay, metrics-overhead). */
import { fork, spawn, type ChildProcess } from 'node:child_process';

/** Runs `weft-server ARGS --json --data-dir DIR` (the admin CLI on the server's data) and parses its output. */
export async function adminCli(serverBin: string, dataDir: string, args: string[]): Promise<any> {
  const p = spawn(process.execPath, [serverBin, ...args, '--json', '--data-dir', dataDir]);
  let out = '';
  p.stdout.on('data', (d) => (out += d));
  await new Promise((r) => p.on('exit', r));
  return JSON.parse(out);
}

/**
 * Forks a fleet script (bench/*-fleet.ts) under tsx with `maxOldSpaceMiB` of heap. `ask(m)` sends
 * `m` (null: send nothing, wait for the next message: the fleet's "ready") and resolves with its
 * reply; replies come in order. A reply with `error` throws.
 */
export function forkFleet(script: string, maxOldSpaceMiB: number): { fleet: ChildProcess; ask: (m: unknown) => Promise<any> } {
  const fleet = fork(script, [], { execArgv: ['--import', 'tsx', `--max-old-space-size=${maxOldSpaceMiB}`], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const replies: ((m: any) => void)[] = [];
  fleet.on('message', (m: any) => {
    if (m.error) throw new Error(`fleet: ${m.error}`);
    replies.shift()?.(m);
  });
  const ask = (m: unknown) => new Promise<any>((res) => { replies.push(res); if (m) fleet.send(m as object); });
  return { fleet, ask };
}
