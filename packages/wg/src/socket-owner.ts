/**
 * Which process serves a unix socket (Linux): the socket's inode from /proc/net/unix, read inside
 * the interface's network namespace because that table is per namespace, then the process whose
 * /proc/PID/fd links to `socket:[inode]`. Used to adopt a wireguard-go that outlived its daemon.
 */
import { readFileSync } from 'node:fs';
import { readdir, readFile, readlink } from 'node:fs/promises';
import type { Runner } from './exec.js';

/** Inodes of sockets bound to `path`, from a /proc/net/unix table ("Num RefCount Protocol Flags Type St Inode Path"). */
export function socketInodes(table: string, path: string): Set<string> {
  const want = new Set([path, path.replace(/^\/var\/run\//, '/run/'), path.replace(/^\/run\//, '/var/run/')]);
  const inodes = new Set<string>();
  for (const line of table.split('\n').slice(1)) {
    const f = line.trim().split(/\s+/);
    if (f.length >= 8 && want.has(f[7]!)) inodes.add(f[6]!);
  }
  return inodes;
}

/** PID of the process holding the unix socket bound at `path`, or null when none is found. */
export async function unixSocketOwner(run: Runner, path: string): Promise<number | null> {
  const inodes = socketInodes(await run(['cat', '/proc/net/unix']), path);
  if (inodes.size === 0) return null;
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    let fds: string[];
    try {
      fds = await readdir(`/proc/${entry}/fd`);
    } catch {
      continue; // gone, or not ours to look at
    }
    for (const fd of fds) {
      const link = await readlink(`/proc/${entry}/fd/${fd}`).catch(() => '');
      const m = /^socket:\[(\d+)\]$/.exec(link);
      if (m && inodes.has(m[1]!)) return Number(entry);
    }
  }
  return null;
}

/** The command name of `pid` (/proc/PID/comm), or null when it is gone. */
export async function processName(pid: number): Promise<string | null> {
  return readFile(`/proc/${pid}/comm`, 'utf8').then((s) => s.trim(), () => null);
}

/** Whether `pid` runs (a zombie does not: it is dead and waits for a parent that is gone). */
export function processAlive(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2, stat.lastIndexOf(')') + 3) !== 'Z';
  } catch {
    return false;
  }
}
