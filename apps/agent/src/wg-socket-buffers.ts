/**
 * Large UDP buffers for wireguard-go's sockets. wireguard-go reads its socket from user space,
 * and a fast flow that outruns it for a moment overflows a small receive buffer: TCP inside the
 * tunnel then backs off. wireguard-go since 2023 asks for 7 MiB itself (SO_RCVBUFFORCE); Debian's
 * 0.0.20220316 keeps the kernel default of 208 KiB (bench:relay-lab: 28 datagrams dropped by it
 * at a 100 Mbit/s link over the UDP relay, 0.73 of direct; none at 4 MiB, 0.90). So after the
 * interface is configured (wireguard-go binds when its port is set and the link comes up) the
 * agent sets the buffers of the sockets wireguard-go holds on the listen port, as newer
 * wireguard-go would: `ss` names them (process, pid, fd), and the relay package's native addon
 * reaches them with pidfd_getfd. Root only, Linux 5.6+, the addon built (scripts/build.mjs);
 * otherwise nothing changes and `weft doctor`'s "UDP receive buffer" check says what to set.
 */
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { udpBatchAddon } from '@weft/relay';

const run = promisify(execFile);

/** One process's hold on a UDP socket, as `ss -uanpmH` lists it. */
export interface UdpSocketHolder {
  local: string;
  process: string;
  pid: number;
  fd: number;
  /** The socket's receive buffer (skmem rb), null when ss did not say. */
  rcvbuf: number | null;
}

/**
 * The holders of each socket in `ss -uanpmH` output (with or without -m: skmem may follow on the
 * next line). A socket held by several processes (inherited) gives one entry each.
 */
export function parseUdpHolders(ssOutput: string): UdpSocketHolder[] {
  const out: UdpSocketHolder[] = [];
  for (const line of ssOutput.replace(/\n\s+skmem/g, ' skmem').split('\n')) {
    const local = /^\S+\s+\d+\s+\d+\s+(\S+)/.exec(line.trim())?.[1];
    if (!local) continue;
    const rb = /\bskmem:\([^)]*\brb(\d+)/.exec(line)?.[1];
    for (const m of line.matchAll(/\("([^"]*)",pid=(\d+),fd=(\d+)\)/g)) {
      out.push({ local, process: m[1]!, pid: Number(m[2]), fd: Number(m[3]), rcvbuf: rb === undefined ? null : Number(rb) });
    }
  }
  return out;
}

export type RaiseResult =
  | { raised: number; rcvbuf: number }
  | { skipped: string };

export interface RaiseOptions {
  /** Runs `ss` (tests may hand in its output). */
  ss?: (args: string[]) => Promise<string>;
  /** pidfd_getfd + setsockopt (tests may fake it); default the relay addon's, when it loaded. */
  raise?: (pid: number, fd: number, bytes: number) => number;
}

/**
 * Sets the buffers of the sockets wireguard-go holds on UDP `port` to `bytes` where they are
 * smaller. Never throws: what could not be done comes back as `skipped`, with why.
 */
export async function raiseWireguardGoBuffers(port: number, bytes: number, opts: RaiseOptions = {}): Promise<RaiseResult> {
  let raise = opts.raise;
  if (!raise) {
    const native = udpBatchAddon();
    if (!native.addon) return { skipped: native.reason };
    raise = (pid, fd, n) => native.addon.raiseSocketBuffers(pid, fd, n);
  }
  const ss = opts.ss ?? (async (args: string[]) => (await run('ss', args, { timeout: 5000 })).stdout);
  let holders: UdpSocketHolder[];
  try {
    holders = parseUdpHolders(await ss(['-uanpmH', `sport = :${port}`]));
  } catch (err) {
    return { skipped: `ss could not list UDP port ${port}: ${(err as Error).message}` };
  }
  const mine = holders.filter((h) => h.process.startsWith('wireguard-go') && h.local.endsWith(`:${port}`));
  if (mine.length === 0) return { skipped: `no wireguard-go socket on UDP ${port}` };
  let raised = 0;
  let rcvbuf = Infinity;
  const errors: string[] = [];
  for (const h of mine) {
    // The kernel reports twice what was set (its bookkeeping share): at bytes or more it is done.
    if (h.rcvbuf !== null && h.rcvbuf >= bytes) {
      rcvbuf = Math.min(rcvbuf, h.rcvbuf);
      continue;
    }
    const rc = raise(h.pid, h.fd, bytes);
    if (rc < 0) {
      errors.push(`${h.local} (pid ${h.pid} fd ${h.fd}): errno ${-rc}`);
      continue;
    }
    raised++;
    rcvbuf = Math.min(rcvbuf, rc);
  }
  if (errors.length > 0) return { skipped: `could not set the buffers of ${errors.join(', ')}` };
  return { raised, rcvbuf };
}
