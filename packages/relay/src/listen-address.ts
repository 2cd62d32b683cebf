/** `HOST:PORT` and `[IPV6]:PORT` as the relay and server configs write listen addresses. */
import { isIP } from 'node:net';

export interface ListenAddress {
  host: string;
  port: number;
}

/** Parses `0.0.0.0:3478`, `[::]:3478`, `127.0.0.1:0`; throws a RangeError saying what is wrong. */
export function parseListenAddress(text: string): ListenAddress {
  const m = /^(?:\[([0-9a-fA-F:.]+)\]|([^:\s[\]]+)):(\d{1,5})$/.exec(text);
  if (!m) throw new RangeError(`"${text}" is not HOST:PORT (e.g. 0.0.0.0:3478 or [::]:3478)`);
  const host = m[1] ?? m[2]!;
  const port = Number(m[3]);
  if (port > 65535) throw new RangeError(`"${text}": port ${port} is above 65535`);
  if (m[1] !== undefined && isIP(host) !== 6) throw new RangeError(`"${text}": ${host} is not an IPv6 address`);
  if (m[2] !== undefined && isIP(host) !== 4) throw new RangeError(`"${text}": ${host} is not an IPv4 address (write IPv6 as [ADDR]:PORT)`);
  return { host, port };
}

export const formatListenAddress = (a: ListenAddress): string => (a.host.includes(':') ? `[${a.host}]:${a.port}` : `${a.host}:${a.port}`);
