/**
 * The batched UDP socket StunServer uses when it can: packages/relay/native/udp-batch.c, built
 * by scripts/build.mjs into packages/relay/native/build/udp_batch.node (and copied next to the
 * weft-server and weft-relay bundles, whose import.meta.url is in their dist/). recvmmsg and
 * sendmmsg move up to BATCH datagrams per syscall and per JS call; the layouts of the tables it
 * shares with JS are described in udp-batch.c. Linux only; anything else, or an addon that did
 * not build, leaves StunServer on node:dgram.
 */
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { fileURLToPath } from 'node:url';

export interface UdpBatchAddon {
  readonly BATCH: number;
  readonly SLOT: number;
  readonly RECV_ENTRY: number;
  readonly SEND_ENTRY: number;
  /** Binds and starts watching; throws like dgram's bind (code EADDRINUSE etc.). */
  open(host: string, port: number, v6only: boolean, reusePort: boolean, rcvbuf: number, sndbuf: number, recv: Buffer, recvTable: Buffer, send: Buffer, sendTable: Buffer, onBatch: (n: number) => void): UdpBatchHandle;
  /** [address, port, family 4 | 6] of the bound socket. */
  address(h: UdpBatchHandle): [string, number, 4 | 6];
  /** The source address of datagram `i` of the batch being delivered, as dgram's RemoteInfo spells it. */
  peer(h: UdpBatchHandle, i: number): string;
  /** Sends the first `n` sendTable entries; returns how many the kernel took. */
  sendBatch(h: UdpBatchHandle, n: number): number;
  /** One datagram: 0, or -errno (a bad destination does not throw). */
  sendTo(h: UdpBatchHandle, msg: Buffer, port: number, address: string): number;
  close(h: UdpBatchHandle): void;
  /**
   * Another process's UDP socket `fd` (pid_getfd): receive and send buffers set to `bytes`
   * (SO_RCVBUFFORCE, else SO_RCVBUF); returns the receive buffer now, or -errno. The agent's use:
   * wireguard-go's sockets (apps/agent/src/wg-socket-buffers.ts).
   */
  raiseSocketBuffers(pid: number, fd: number, bytes: number): number;
}

declare const handle: unique symbol;
export type UdpBatchHandle = { readonly [handle]: true };

/** recvTable entry kinds (udp-batch.c). */
export const PEER_IPV4 = 4;
export const PEER_IPV6 = 6;
export const PEER_MAPPED_IPV4 = 46;

export const ADDON_FILE = 'udp_batch.node';
/** Where the addon may be: beside the sources (vitest, tsx), beside a bundle, or beside its chunks. */
const CANDIDATES = [`../native/build/${ADDON_FILE}`, `./${ADDON_FILE}`, `../${ADDON_FILE}`];

let loaded: { addon: UdpBatchAddon; path: string } | { addon?: undefined; reason: string } | undefined;

/** The addon, loaded once; or why not (`WEFT_UDP_NATIVE=0`, not Linux, not built). */
export function udpBatchAddon(): { addon: UdpBatchAddon; path: string } | { addon?: undefined; reason: string } {
  if (process.env.WEFT_UDP_NATIVE === '0') return { reason: 'WEFT_UDP_NATIVE=0' };
  if (loaded) return loaded;
  if (process.platform !== 'linux') return (loaded = { reason: `recvmmsg/sendmmsg are Linux only (this is ${process.platform})` });
  const path = CANDIDATES.map((c) => fileURLToPath(new URL(c, import.meta.url))).find((p) => existsSync(p));
  if (!path) return (loaded = { reason: `${ADDON_FILE} not built (scripts/build.mjs compiles it with gcc)` });
  try {
    return (loaded = { addon: createRequire(import.meta.url)(path) as UdpBatchAddon, path });
  } catch (err) {
    return (loaded = { reason: `${path} did not load: ${(err as Error).message}` });
  }
}
