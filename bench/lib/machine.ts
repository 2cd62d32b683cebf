/** What a benchmark ran on, recorded next to its numbers. */
import { spawnSync } from 'node:child_process';
import { availableParallelism, cpus, loadavg, release, totalmem } from 'node:os';

export interface Machine {
  nproc: number;
  cpuModel: string;
  memoryMiB: number;
  kernel: string;
  node: string;
  /** 1-minute load average when recorded: other work on a shared machine skews the numbers. */
  loadAvg1m: number;
  /** Versions of the external tools the benchmark used. */
  tools: Record<string, string>;
}

function version(cmd: string, args: string[]): string {
  const r = spawnSync(cmd, args, { encoding: 'utf8', timeout: 5000 });
  return (r.stdout || r.stderr || '').split('\n').find((l) => l.trim() !== '')?.trim() ?? 'unknown';
}

export function machine(tools: Record<string, [string, string[]]> = {}): Machine {
  return {
    nproc: availableParallelism(),
    cpuModel: cpus()[0]?.model ?? 'unknown',
    memoryMiB: Math.round(totalmem() / 2 ** 20),
    kernel: release(),
    node: process.version,
    loadAvg1m: Math.round(loadavg()[0]! * 100) / 100,
    tools: Object.fromEntries(Object.entries(tools).map(([name, [cmd, args]]) => [name, version(cmd, args)])),
  };
}
