/** `weft-relay` flags and environment, validated once; a bad value names the flag. */
import { readFileSync } from 'node:fs';
import { DEFAULT_PORT, parseListenAddress } from '@weft/relay';

export const USAGE = `Usage: weft-relay [--stun-listen HOST:PORT] [--workers N]
       weft-relay --server URL[,URL...] --mesh-secret-file PATH [--listen HOST:PORT] [--name NAME] [--stun-listen HOST:PORT]
       weft-relay --help | --version
  A standalone Weft relay region: the STUN service (RFC 8489 Binding, UDP) and, with --server, the
  packet relay (WebSocket on --listen, UDP on the STUN port) for the nodes of that control server.
  --stun-listen       UDP host:port of the STUN service (env WEFT_STUN_LISTEN; default 0.0.0.0:${DEFAULT_PORT});
                      [::]:PORT answers IPv4 and IPv6
  --workers           processes sharing the STUN port, e.g. one per core (env WEFT_RELAY_WORKERS; default 1;
                      more than 1 needs Linux and Node.js 22.12 or newer; STUN only, not with --server)
  --server            the control server's URL, e.g. https://weft.example.com (env WEFT_RELAY_SERVER);
                      with several replicas, each one's own URL, comma-separated
                      (https://weft-1.example.com,https://weft-2.example.com): the region links to every
                      one and keeps relaying while any is up; without --server, STUN service only
  --mesh-secret-file  file holding the deployment's relay mesh secret (base64, as
                      \`weft-server relay-secret --out FILE\` writes it) (env WEFT_RELAY_MESH_SECRET_FILE)
  --listen            TCP host:port of the relay's HTTP(S) WebSocket (env WEFT_RELAY_LISTEN; default 0.0.0.0:8443)
  --name              this relay's name in the relay mesh, 1-64 of A-Z a-z 0-9 _ - (env WEFT_RELAY_NAME;
                      default relay-<port>)`;

export class UsageError extends Error {}

export interface RelayArgs {
  stunListen: string;
  workers: number;
  /** The packet relay; absent = STUN only. */
  relay?: { serverUrls: string[]; secret: Buffer; listen: string; name: string };
}

/** The most --workers takes: far more than any machine's cores, to catch a typo. */
const MAX_WORKERS = 256;

const FLAGS = {
  '--stun-listen': { key: 'stunListen', env: 'WEFT_STUN_LISTEN' },
  '--workers': { key: 'workers', env: 'WEFT_RELAY_WORKERS' },
  '--server': { key: 'server', env: 'WEFT_RELAY_SERVER' },
  '--mesh-secret-file': { key: 'meshSecretFile', env: 'WEFT_RELAY_MESH_SECRET_FILE' },
  '--listen': { key: 'listen', env: 'WEFT_RELAY_LISTEN' },
  '--name': { key: 'name', env: 'WEFT_RELAY_NAME' },
} as const;
type Flag = keyof typeof FLAGS;
type Key = (typeof FLAGS)[Flag]['key'];

export function parseArgs(argv: string[], env: NodeJS.ProcessEnv): RelayArgs {
  const value: Partial<Record<Key, { v: string; from: string }>> = {};
  for (const f of Object.values(FLAGS)) {
    const e = env[f.env];
    if (e) value[f.key] = { v: e, from: `environment variable ${f.env}` };
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    const [name, inline] = arg.includes('=') ? [arg.slice(0, arg.indexOf('=')), arg.slice(arg.indexOf('=') + 1)] : [arg, undefined];
    if (!(name in FLAGS)) throw new UsageError(`unknown argument ${name} (known: ${Object.keys(FLAGS).join(', ')}, --help, --version)`);
    const v = inline ?? argv[++i];
    if (v === undefined) throw new UsageError(`flag ${name} needs a value`);
    value[FLAGS[name as Flag].key] = { v, from: `flag ${name}` };
  }
  const get = (k: Key, dflt: string) => value[k] ?? { v: dflt, from: 'default' };
  const stun = get('stunListen', `0.0.0.0:${DEFAULT_PORT}`);
  const workersText = get('workers', '1');
  const workers = Number(workersText.v);
  if (!/^\d+$/.test(workersText.v) || workers < 1 || workers > MAX_WORKERS) throw new UsageError(`"workers" (${workersText.from}): "${workersText.v}" is not a whole number from 1 to ${MAX_WORKERS}`);
  const server = value.server;
  if (!server) {
    for (const k of ['meshSecretFile', 'listen', 'name'] as const) {
      const got = value[k];
      if (got) throw new UsageError(`"${kebab(k)}" (${got.from}) is for the packet relay, which needs --server URL (env WEFT_RELAY_SERVER)`);
    }
    if (stun.v === 'off') throw new UsageError(`"stun-listen" (${stun.from}): off would leave weft-relay nothing to do (pass --server URL for the packet relay)`);
  }
  if (stun.v !== 'off') {
    try {
      parseListenAddress(stun.v);
    } catch (err) {
      throw new UsageError(`"stun-listen" (${stun.from}): ${(err as Error).message}`);
    }
  }
  if (!server) return { stunListen: stun.v, workers };

  if (workers > 1) throw new UsageError(`"workers" (${workersText.from}): the packet relay runs in one process (its clients are in memory); use --workers 1 with --server`);
  const serverUrls = server.v.split(',').map((u) => u.trim());
  for (const u of serverUrls) {
    try {
      const url = new URL(u);
      if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new Error('not http(s)');
    } catch {
      throw new UsageError(`"server" (${server.from}): "${u}" is not an http:// or https:// URL, e.g. https://weft.example.com (several: comma-separated)`);
    }
  }
  const secretFile = value.meshSecretFile;
  if (!secretFile) throw new UsageError('"mesh-secret-file" is needed with --server: a file holding the relay mesh secret (on the server host, `weft-server relay-secret --out FILE` writes one)');
  let secret: Buffer;
  try {
    secret = Buffer.from(readFileSync(secretFile.v, 'utf8').trim(), 'base64');
  } catch (err) {
    throw new UsageError(`"mesh-secret-file" (${secretFile.from}): cannot read ${secretFile.v}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`);
  }
  if (secret.length !== 32) throw new UsageError(`"mesh-secret-file" (${secretFile.from}): ${secretFile.v} does not hold a 32-byte secret in base64 (it holds ${secret.length} bytes)`);
  const listen = get('listen', '0.0.0.0:8443');
  let port: number;
  try {
    port = parseListenAddress(listen.v).port;
  } catch (err) {
    throw new UsageError(`"listen" (${listen.from}): ${(err as Error).message}`);
  }
  const name = get('name', `relay-${port}`);
  if (!/^[A-Za-z0-9_-]{1,64}$/.test(name.v)) throw new UsageError(`"name" (${name.from}): "${name.v}" is not 1-64 of A-Z a-z 0-9 _ -`);
  return { stunListen: stun.v, workers, relay: { serverUrls: [...new Set(serverUrls.map((u) => new URL(u).toString().replace(/\/$/, '')))], secret, listen: listen.v, name: name.v } };
}

function kebab(k: string): string {
  return k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);
}
