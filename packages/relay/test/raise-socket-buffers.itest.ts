/**
 * The addon's raiseSocketBuffers on another process's real socket (the agent's use: wireguard-go's,
 * apps/agent/src/wg-socket-buffers.ts): a child Node process holds a UDP socket, this one sets its
 * buffers through pidfd_getfd, and `ss` shows the child's socket changed.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { udpBatchAddon } from '../src/index.js';

const native = udpBatchAddon();
const addon = native.addon!;

/** [rb, fd] of the socket `pid` holds on UDP `port`, from ss. */
function ssSocket(pid: number, port: number): { rcvbuf: number; fd: number } {
  const text = execFileSync('ss', ['-uanpmH', `sport = :${port}`], { encoding: 'utf8' }).replace(/\n\s+skmem/g, ' skmem');
  const line = text.split('\n').find((l) => l.includes(`pid=${pid},`));
  if (!line) throw new Error(`ss lists no socket of pid ${pid} on UDP ${port}:\n${text}`);
  return { fd: Number(/pid=\d+,fd=(\d+)/.exec(line)![1]), rcvbuf: Number(/\brb(\d+)/.exec(line)![1]) };
}

describe('raiseSocketBuffers (pidfd_getfd)', () => {
  let child: ChildProcess;
  let port: number;

  beforeAll(async () => {
    expect(native.addon, `the addon must be built here (${'reason' in native ? native.reason : ''})`).toBeDefined();
    child = spawn(process.execPath, ['-e', "const s = require('node:dgram').createSocket('udp4'); s.bind(0, '127.0.0.1', () => console.log(s.address().port)); setInterval(() => {}, 1000);"], { stdio: ['ignore', 'pipe', 'inherit'] });
    port = await new Promise<number>((resolve, reject) => {
      child.stdout!.once('data', (d) => resolve(Number(String(d).trim())));
      child.once('exit', (code) => reject(new Error(`child exited ${code}`)));
    });
  });
  afterAll(() => {
    child?.kill();
  });

  it("sets another process's UDP socket's buffers: the kernel reports the receive buffer doubled, ss sees it", () => {
    const before = ssSocket(child.pid!, port);
    const bytes = 3 * 1024 * 1024;
    expect(before.rcvbuf).toBeLessThan(2 * bytes);
    expect(addon.raiseSocketBuffers(child.pid!, before.fd, bytes)).toBe(2 * bytes); // root: SO_RCVBUFFORCE, above rmem_max
    expect(ssSocket(child.pid!, port).rcvbuf).toBe(2 * bytes);
  });

  it('a descriptor that is no UDP socket, one that is not open, or a process that is gone: -errno, nothing thrown or changed', () => {
    expect(addon.raiseSocketBuffers(child.pid!, 0, 1 << 20)).toBe(-88); // stdin (/dev/null): ENOTSOCK
    expect(addon.raiseSocketBuffers(child.pid!, 1000, 1 << 20)).toBe(-9); // EBADF
    const gone = spawn(process.execPath, ['-e', '0']);
    const pid = gone.pid!;
    return new Promise<void>((resolve) => gone.once('exit', () => {
      // Reaped by Node: the pid is free (ESRCH).
      expect(addon.raiseSocketBuffers(pid, 3, 1 << 20)).toBe(-3);
      resolve();
    }));
  });

  it('arguments that are not positive integers are a TypeError', () => {
    expect(() => addon.raiseSocketBuffers(0, 3, 1)).toThrow(TypeError);
    expect(() => addon.raiseSocketBuffers(1, -1, 1)).toThrow(TypeError);
    expect(() => addon.raiseSocketBuffers(1, 3, 0)).toThrow(TypeError);
    expect(() => (addon.raiseSocketBuffers as unknown as (...a: unknown[]) => number)('1', 3, 1)).toThrow(TypeError);
  });
});
