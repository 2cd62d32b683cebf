/** TCP throughput between two lab hosts with iperf3 (server in one host, client in the other). */
import type { Host } from './host.js';
import { requireBinaries } from './preflight.js';

export interface IperfOptions {
  /** Test length. Default 5 s. */
  seconds?: number;
  /** Default 5201. */
  port?: number;
  /** Leading seconds left out of the result (TCP slow start). Default 1. */
  omitSeconds?: number;
}

export interface IperfResult {
  /** As received by the server side, the number that matters for a tunnel. */
  bitsPerSecond: number;
  /** Sender's TCP retransmits; null if iperf3 did not report them. */
  retransmits: number | null;
  seconds: number;
}

/**
 * Client in `client`, server in `server` bound to `targetIp` (an address of `server`). The server
 * runs with --forceflush: iperf3 block-buffers stdout into a pipe, and we wait for its banner.
 */
export async function iperf3(client: Host, server: Host, targetIp: string, opts: IperfOptions = {}): Promise<IperfResult> {
  requireBinaries(['iperf3']);
  const seconds = opts.seconds ?? 5;
  const port = String(opts.port ?? 5201);
  const srv = server.spawn('iperf3', ['-s', '-1', '--forceflush', '-B', targetIp, '-p', port], { logName: 'iperf3-server' });
  try {
    await srv.waitForLine(/Server listening/, 10_000);
    const r = await client.execOk('iperf3', ['-c', targetIp, '-p', port, '-t', String(seconds), '-O', String(opts.omitSeconds ?? 1), '-J'], { timeoutMs: (seconds + (opts.omitSeconds ?? 1) + 20) * 1000 });
    const j = JSON.parse(r.stdout) as {
      end?: { sum_received?: { bits_per_second?: number; seconds?: number }; sum_sent?: { retransmits?: number } };
      error?: string;
    };
    const bps = j.end?.sum_received?.bits_per_second;
    if (typeof bps !== 'number') throw new Error(`iperf3 gave no result: ${j.error ?? r.stdout.slice(0, 500)}`);
    return { bitsPerSecond: bps, retransmits: j.end?.sum_sent?.retransmits ?? null, seconds: j.end?.sum_received?.seconds ?? seconds };
  } finally {
    await srv.kill({ graceMs: 1000 });
  }
}
