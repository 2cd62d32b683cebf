/**
 * Command-line grammar: `weft <command> [flags]`. Every command takes --socket and --state-dir
 * (several daemons side by side) and --help. Parsing is pure; commands get validated values.
 */
import { resolve } from 'node:path';
import { parseArgs, type ParseArgsConfig } from 'node:util';
import { DEFAULT_STATE_DIR, socketLookupLines } from '../paths.js';
import { CliError, ExitCode } from './exit-codes.js';

type Options = NonNullable<ParseArgsConfig['options']>;

const common: Options = {
  socket: { type: 'string' },
  'state-dir': { type: 'string' },
  help: { type: 'boolean', short: 'h' },
};

const joinFlags: Options = {
  server: { type: 'string' },
  'ca-file': { type: 'string' },
  'auth-key': { type: 'string' },
  hostname: { type: 'string' },
  json: { type: 'boolean' },
  timeout: { type: 'string' },
};

export const commands = {
  daemon: {
    summary: 'run the node agent in the foreground (needs root)',
    usage: 'weft daemon [--state-dir DIR] [--socket PATH] [--wg-backend auto|kernel|userspace] [--interface NAME] [--listen-port N] [--mtu N] [--log-format json|text]',
    options: {
      'wg-backend': { type: 'string' },
      interface: { type: 'string' },
      'listen-port': { type: 'string' },
      mtu: { type: 'string' },
      'log-format': { type: 'string' },
    } as Options,
  },
  up: {
    summary: 'join the mesh (first time: --server URL) or bring the interface back up',
    usage: 'weft up [--server URL] [--ca-file FILE] [--auth-key KEY] [--hostname NAME] [--timeout SECONDS] [--json] [--socket PATH]',
    options: joinFlags,
  },
  login: {
    summary: 'same as up: join, interactively without --auth-key',
    usage: 'weft login [--server URL] [--ca-file FILE] [--auth-key KEY] [--hostname NAME] [--timeout SECONDS] [--json] [--socket PATH]',
    options: joinFlags,
  },
  status: {
    summary: 'show this node and its peers',
    usage: 'weft status [--json] [--socket PATH]',
    options: { json: { type: 'boolean' } } as Options,
  },
  netcheck: {
    summary: 'check this network: UDP, public address, NAT behaviour, latency to each region',
    usage: 'weft netcheck [--json] [--socket PATH]',
    options: { json: { type: 'boolean' } } as Options,
  },
  doctor: {
    summary: 'check this node for the usual WireGuard failures; each PASS / WARN / FAIL says what to do',
    usage: 'weft doctor [--json] [--socket PATH]',
    options: { json: { type: 'boolean' } } as Options,
  },
  metrics: {
    summary: "this agent's own metrics (Prometheus text; --json: the samples)",
    usage: 'weft metrics [--json] [--socket PATH]',
    options: { json: { type: 'boolean' } } as Options,
  },
  ping: {
    summary: 'ping a peer over the tunnel and say by which path each reply came',
    usage: 'weft ping PEER [-c N] [--json] [--socket PATH]',
    options: { json: { type: 'boolean' }, count: { type: 'string', short: 'c' } } as Options,
  },
  down: {
    summary: 'take the interface down; the node stays registered (weft up brings it back)',
    usage: 'weft down [--json] [--socket PATH]',
    options: { json: { type: 'boolean' } } as Options,
  },
  logout: {
    summary: 'leave: interface removed, keys and state deleted',
    usage: 'weft logout [--json] [--socket PATH]',
    options: { json: { type: 'boolean' } } as Options,
  },
} as const;

export type CommandName = keyof typeof commands;

export interface Parsed {
  command: CommandName | 'help' | 'version';
  /** For `help`: which command to explain. */
  topic?: CommandName;
  help: boolean;
  socket?: string;
  stateDir?: string;
  json: boolean;
  server?: string;
  /** `--ca-file`, made absolute. */
  caFile?: string;
  authKey?: string;
  hostname?: string;
  timeoutS?: number;
  backend?: 'auto' | 'kernel' | 'userspace';
  interfaceName?: string;
  listenPort?: number;
  mtu?: number;
  logFormat?: 'json' | 'text';
  /** `weft ping`: the peer (name, tunnel IP or node key) and how many pings. */
  target?: string;
  count?: number;
}

const usageError = (msg: string, command?: CommandName) =>
  new CliError(msg, ExitCode.Usage, command ? `usage: ${commands[command].usage}` : 'run: weft --help');

function int(value: string | undefined, flag: string, min: number, max: number, command: CommandName): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < min || n > max) throw usageError(`--${flag} must be an integer from ${min} to ${max}, got "${value}"`, command);
  return n;
}

export function parse(argv: string[]): Parsed {
  const [first, ...rest] = argv;
  if (first === undefined || first === '--help' || first === '-h' || first === 'help') {
    const topic = first === 'help' && rest[0] !== '--help' && rest[0] !== '-h' ? rest[0] : undefined;
    if (topic !== undefined && !(topic in commands)) throw usageError(`unknown command "${topic}"`);
    return { command: 'help', help: true, json: false, ...(topic && { topic: topic as CommandName }) };
  }
  if (first === '--version' || first === 'version') return { command: 'version', help: false, json: false };
  if (!(first in commands)) throw usageError(`unknown command "${first}"`);
  const command = first as CommandName;

  let values: Record<string, string | boolean | undefined>;
  let positionals: string[];
  try {
    ({ values, positionals } = parseArgs({ args: rest, options: { ...common, ...commands[command].options }, strict: true, allowPositionals: command === 'ping' }) as { values: Record<string, string | boolean | undefined>; positionals: string[] });
  } catch (err) {
    throw usageError((err as Error).message.replace(/\. To specify a positional.*$/s, ''), command);
  }
  const str = (k: string) => values[k] as string | undefined;
  const out: Parsed = { command, help: values.help === true, json: values.json === true };
  if (str('socket') !== undefined) out.socket = str('socket')!;
  if (str('state-dir') !== undefined) out.stateDir = str('state-dir')!;
  if (str('server') !== undefined) out.server = str('server')!;
  if (str('auth-key') !== undefined) out.authKey = str('auth-key')!;
  // Absolute: the daemon reads it, from its own working directory, now and after every restart.
  if (str('ca-file') !== undefined) out.caFile = resolve(str('ca-file')!);
  if (str('hostname') !== undefined) out.hostname = str('hostname')!;
  const timeoutS = int(str('timeout'), 'timeout', 1, 86_400, command);
  if (timeoutS !== undefined) out.timeoutS = timeoutS;

  const backend = str('wg-backend');
  if (backend !== undefined) {
    if (backend !== 'auto' && backend !== 'kernel' && backend !== 'userspace') throw usageError(`--wg-backend must be auto, kernel or userspace, got "${backend}"`, command);
    out.backend = backend;
  }
  const logFormat = str('log-format');
  if (logFormat !== undefined) {
    if (logFormat !== 'json' && logFormat !== 'text') throw usageError(`--log-format must be json or text, got "${logFormat}"`, command);
    out.logFormat = logFormat;
  }
  if (str('interface') !== undefined) {
    const name = str('interface')!;
    if (!/^[A-Za-z0-9_.-]{1,15}$/.test(name)) throw usageError(`--interface must be 1-15 characters of A-Z a-z 0-9 _ . -, got "${name}"`, command);
    out.interfaceName = name;
  }
  const port = int(str('listen-port'), 'listen-port', 0, 65_535, command);
  if (port !== undefined) out.listenPort = port;
  const mtu = int(str('mtu'), 'mtu', 1280, 9000, command);
  if (mtu !== undefined) out.mtu = mtu;
  if (command === 'ping' && !out.help) {
    if (positionals.length !== 1) throw usageError(positionals.length === 0 ? 'name the peer to ping' : `one peer only, got ${positionals.length}`, command);
    out.target = positionals[0]!;
    out.count = int(str('count'), 'count', 1, 1000, command) ?? 3;
  }
  return out;
}

export function helpText(topic?: CommandName): string {
  if (topic) {
    const c = commands[topic];
    return `${c.usage}\n\n${c.summary}\n\n${commandDetail[topic]}\n`;
  }
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(8)} ${c.summary}`);
  return [
    'weft: the Weft node agent',
    '',
    'usage: weft <command> [flags]',
    '',
    'commands:',
    ...lines,
    '',
    `Every command takes --help, --state-dir DIR (default ${DEFAULT_STATE_DIR}) and --socket PATH.`,
    'The control socket is the first of:',
    ...socketLookupLines(),
    '`weft --version` prints the version and the control protocol version it speaks.',
    'Exit codes: `weft help status`.',
    '',
  ].join('\n');
}

const exitCodeTable = [
  'exit codes: 0 ok, 1 error, 2 usage, 3 not root, 4 daemon not running, 5 server unreachable,',
  '  6 auth key invalid, 7 auth key expired, 8 auth key used, 9 auth key revoked, 10 node revoked,',
  '  11 node expired, 12 login expired, 13 not logged in, 14 stopped, 15 starting, 16 user suspended,',
  '  17 UDP blocked (netcheck), 18 no STUN server to check against (netcheck), 19 server certificate refused,',
  '  20 doctor found a FAIL, 21 no such peer (ping), 22 no reply (ping), 130 interrupted',
].join('\n');

const commandDetail: Record<CommandName, string> = {
  daemon: [
    'Keeps this node in the mesh: holds the connection to the control server and programs',
    `WireGuard. State (keys, last netmap) lives in --state-dir (default ${DEFAULT_STATE_DIR}, 0700);`,
    'the CLI talks to it over --socket (0600). Logs go to stderr (--log-format, default json',
    'when stderr is not a terminal). Defaults: --interface weft0, --wg-backend auto,',
    '--listen-port 41641. Without --mtu the interface MTU follows the paths in use (probed through',
    'the tunnel, 1280 to 1420); --mtu N pins it to N.',
    exitCodeTable,
  ].join('\n'),
  up: [
    'With --auth-key the node joins at once. Without it, an interactive login: weft prints a URL',
    'and a short code and waits until the device is approved (in the browser, or by an admin:',
    'weft-server nodes approve CODE). Returns when the interface is up with a netmap.',
    'After `weft down`, `weft up` with no flags brings the node back.',
    'An https:// server is verified against the system store plus --ca-file FILE (PEM), which is',
    'kept with the server URL for later runs and daemon restarts. Plain http:// to a server that is',
    'not on this host works but is warned about: the control channel is not protected.',
    exitCodeTable,
  ].join('\n'),
  login: 'Same as weft up.\n' + exitCodeTable,
  status: [
    'State is one of: running, starting, needs-login, stopped, revoked, expired.',
    'PATH is direct when WireGuard sends to the peer\'s own endpoint and had a handshake in the last',
    '3 minutes, relay (REGION) when it goes over the relay, none otherwise; under the table, for each',
    'peer that is not direct, since when and why in words (a hole punch that timed out and when it is',
    'retried, UDP blocked here, an endpoint-dependent NAT...). --json prints the stable',
    'machine-readable form (see apps/agent/src/status.ts). Exits 0 only while running: 4 no daemon,',
    '13 needs login, 14 stopped, 15 starting, 10 revoked, 11 expired (the status is printed all the same).',
    exitCodeTable,
  ].join('\n'),
  netcheck: [
    'The daemon sends STUN Binding requests to every STUN server of every region the control server',
    'lists, all from one UDP socket, and reports: whether UDP gets out at all, the public IPv4 (and',
    'IPv6) address, whether the NAT maps that socket to a different public port per destination',
    '(endpoint-dependent: peers behind such NATs usually need the relay), whether the local port is',
    'kept, the latency to each region, and the preferred region (the lowest latency; it changes only',
    'when another region is better by 20% and 10 ms). --json prints the stable machine-readable form',
    '(see apps/agent/src/netcheck.ts). Exits 0 when UDP works, 17 when no STUN server answered over',
    'UDP (the report is printed all the same), 18 when there is no STUN server to check against,',
    '13 when the node has not joined.',
    exitCodeTable,
  ].join('\n'),
  doctor: [
    'Checks, as the daemon sees this host: daemon and interface up; the node key the server has, the',
    "daemon's and the interface's agree; every netmap peer is in `wg show` with its allowed IPs; peer",
    'addresses route via the Weft interface (no other route or ip rule diverts them); table inet weft',
    'is there when a packet filter is in force and no other nftables table drops the WireGuard port;',
    "forwarding; wireguard-go's UDP receive buffer (WARN under 1 MiB); clock skew against the server's Date header; stale handshakes with traffic attempted;",
    'path MTU to each active peer against the interface MTU (FAIL when a path cannot carry it). Each line is PASS, WARN or FAIL with the',
    'command that fixes it. --json prints {version, ok, checks: [{id, title, status, detail, fix}]}.',
    'Exits 0 with no FAIL, 20 with any FAIL, 4 when the daemon is not running.',
    exitCodeTable,
  ].join('\n'),
  metrics: [
    "The daemon's own metrics in Prometheus text format (0.0.4), from its local socket: control",
    'connection state, connects and reconnects, netmaps and deltas applied, link reports sent, the',
    'interface, peers by path, and per peer the handshake age and rx/tx bytes. --json prints the',
    'samples as [{name, labels, value}]. To scrape it, run it from a textfile collector.',
    exitCodeTable,
  ].join('\n'),
  ping: [
    'Sends ICMP echo requests (the system ping) to the peer\'s tunnel address, one a second, and',
    'prints each reply with the path it came by: "via 203.0.113.7:41641" (direct, the endpoint) or',
    '"via relay REGION". PEER is a peer\'s name, tunnel IPv4 or node key. -c N pings (default 3).',
    '--json prints one object with every reply. Exits 0 when a reply came, 22 when none did, 21 when',
    'there is no such peer.',
    exitCodeTable,
  ].join('\n'),
  down: 'The control connection is closed and the link taken down; keys and registration stay.\n' + exitCodeTable,
  logout: [
    'Removes the interface, deletes the keys and state. The control server is not told yet',
    '(no deregistration endpoint): ask an admin to delete the node there.',
    exitCodeTable,
  ].join('\n'),
};
