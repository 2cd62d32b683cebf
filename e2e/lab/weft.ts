/**
 * Running the real Weft binaries in the lab: the control server in one host, an agent daemon per
 * host, the CLIs against them. Every command line is built in `cli` below, so when a flag changes
 * the fix is one line.
 *
 * REST calls are made from inside a lab host; see weft-rest.ts for why and how.
 */
import { existsSync, readdirSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { statusExitCode, type NetcheckReport, type Status } from '@weft/agent';
import type { ExecResult } from './exec.js';
import { ExecError } from './exec.js';
import type { Host } from './host.js';
import type { Lab } from './lab.js';
import type { ExitStatus, LabProcess } from './process.js';
import { RestClient, httpFrom } from './weft-rest.js';
import { GiveUp, waitFor } from './wait.js';

export type { Status as AgentStatus, PeerStatus as AgentPeerStatus } from '@weft/agent';

export const REPO = fileURLToPath(new URL('../..', import.meta.url));
export const SERVER_BIN = join(REPO, 'apps/server/bin/weft-server.mjs');
export const AGENT_BIN = join(REPO, 'apps/agent/bin/weft.mjs');
export const RELAY_BIN = join(REPO, 'apps/relay/bin/weft-relay.mjs');
export const SERVER_PORT = 8080;

/** Configuration the machine running the tests may have set that must not leak into the lab. */
const CLEAN_ENV: Record<string, string> = {
  DATABASE_URL: '',
  WEFT_DATABASE_URL: '',
  WEFT_CONFIG: '',
  WEFT_DATA_DIR: '',
  WEFT_LISTEN: '',
  WEFT_SERVER_URL: '',
  WEFT_SERVER: '',
  WEFT_API_KEY: '',
  WEFT_SOCKET: '',
};

/** argv (after `node BIN`) for every command the lab runs. */
export const cli = {
  // debug: one line per request, which bench/lib/join-phases.ts reads for the server's phases.
  // STUN is off unless a test asks for it (ServerOptions.stunListen): labs run in parallel with
  // other suites, and nothing may collide on the default 3478.
  serve: (o: { listen: string; dataDir: string; serverUrl: string; stunListen?: string }) => ['serve', '--listen', o.listen, '--stun-listen', o.stunListen ?? 'off', '--data-dir', o.dataDir, '--server-url', o.serverUrl, '--log-level', 'debug'],
  /** Admin commands reach the running server through the unix socket in its data dir. */
  admin: (dataDir: string, args: string[]) => [...args, '--data-dir', dataDir, '--json'],
  daemon: (o: { stateDir: string; socket: string; iface: string; listenPort?: number; mtu?: number }) => [
    'daemon',
    '--state-dir', o.stateDir,
    '--socket', o.socket,
    '--interface', o.iface,
    '--wg-backend', 'userspace',
    '--log-format', 'json',
    ...(o.listenPort !== undefined ? ['--listen-port', String(o.listenPort)] : []),
    ...(o.mtu !== undefined ? ['--mtu', String(o.mtu)] : []),
  ],
  up: (o: { socket: string; server?: string; authKey?: string; hostname?: string; timeoutS?: number }) => [
    'up',
    '--socket', o.socket,
    '--json',
    ...(o.server ? ['--server', o.server] : []),
    ...(o.authKey ? ['--auth-key', o.authKey] : []),
    ...(o.hostname ? ['--hostname', o.hostname] : []),
    ...(o.timeoutS ? ['--timeout', String(o.timeoutS)] : []),
  ],
  status: (socket: string) => ['status', '--json', '--socket', socket],
  netcheck: (socket: string, json: boolean) => ['netcheck', ...(json ? ['--json'] : []), '--socket', socket],
  relay: (o: { stunListen: string }) => ['--stun-listen', o.stunListen],
  down: (socket: string) => ['down', '--json', '--socket', socket],
  logout: (socket: string) => ['logout', '--json', '--socket', socket],
};

/** Parses the last JSON document in a command's stdout (CLIs may print progress first). */
export function parseJsonOutput<T>(r: ExecResult, what: string): T {
  const text = r.stdout.trim();
  for (const start of [0, text.lastIndexOf('\n{'), text.indexOf('{'), text.indexOf('[')]) {
    if (start < 0) continue;
    try {
      return JSON.parse(text.slice(start)) as T;
    } catch {
      /* try the next candidate */
    }
  }
  throw new Error(`${what}: expected JSON on stdout, got:\n${r.stdout.slice(-1000)}\n${r.stderr.slice(-1000)}`);
}

// ---------------------------------------------------------------------------------------------
// Server

export interface ServerOptions {
  /** Default: the lab host named "server". */
  host?: Host;
  /** Default 8080. */
  port?: number;
  env?: Record<string, string>;
  /** `--stun-listen` (UDP HOST:PORT). Default off. */
  stunListen?: string;
  /** Until GET /readyz says 200. Default 120 s: a first start creates the embedded database (5-7 s alone, over a minute on a machine running other suites). */
  readyTimeoutMs?: number;
  /** Several servers on one host (replicas): each its own data dir and log. Default "server". */
  name?: string;
  /** `--server-url`, what agents are told to use; default this server's own URL. Replicas behind a load balancer advertise the balancer's. */
  advertisedUrl?: string;
}

export class WeftServer {
  /** The agents' `--server` URL, on the lab LAN. */
  readonly url: string;
  readonly dataDir: string;
  process!: LabProcess;
  /** REST client with an admin API key; available after `start`. */
  api!: RestClient;
  adminKey!: string;

  private constructor(
    readonly host: Host,
    readonly port: number,
    private readonly opts: ServerOptions,
  ) {
    this.url = `http://${host.ip}:${port}`;
    this.dataDir = host.tmpPath(opts.name ? `${opts.name}-data` : 'server-data');
  }

  /** Starts `weft-server serve`, waits for /readyz, creates an admin API key. */
  static async start(lab: Lab, opts: ServerOptions = {}): Promise<WeftServer> {
    const host = opts.host ?? lab.hosts['server'];
    if (!host) throw new Error('WeftServer.start: the lab has no host named "server"; pass opts.host');
    const s = new WeftServer(host, opts.port ?? SERVER_PORT, opts);
    await s.launch();
    const created = await s.admin<{ key: string }>(['apikeys', 'create', '--scopes', 'admin', '--description', 'e2e lab']);
    if (typeof created.key !== 'string') throw new Error(`apikeys create printed no key: ${JSON.stringify(created)}`);
    s.adminKey = created.key;
    s.api = new RestClient(host, s.url, s.adminKey);
    return s;
  }

  /** `weft-server <args> --data-dir D --json`, parsed. Rejects with the output on failure. */
  async admin<T = unknown>(args: string[], timeoutMs = 30_000): Promise<T> {
    const r = await this.host.exec(process.execPath, [SERVER_BIN, ...cli.admin(this.dataDir, args)], { timeoutMs, env: CLEAN_ENV, cwd: REPO });
    if (r.code !== 0) throw new ExecError(['weft-server', ...args], r);
    return parseJsonOutput<T>(r, `weft-server ${args.join(' ')}`);
  }

  /**
   * Creates the user if needed and an auth key for it (reusable unless told otherwise, never
   * expires); returns the secret. Over REST: each admin CLI call costs a Node start-up (~2 s here).
   */
  async authKey(user: string, opts: { reusable?: boolean; ephemeral?: boolean } = {}): Promise<string> {
    const users = (await this.api.get<{ items: Array<{ name: string }> }>('/api/v1/users')).items;
    if (!users.some((u) => u.name === user)) await this.api.createUser(user);
    return this.api.createAuthKey({ user, reusable: opts.reusable ?? true, ephemeral: opts.ephemeral ?? false, expiresIn: 0 });
  }

  /** `weft-server nodes approve CODE --user USER`: an admin approves an interactive login. */
  approve(code: string, user: string): Promise<unknown> {
    return this.admin(['nodes', 'approve', code, '--user', user]);
  }

  async readyz(): Promise<boolean> {
    try {
      return (await httpFrom(this.host, 'GET', `${this.url}/readyz`, { timeoutMs: 2000 })).status === 200;
    } catch {
      return false; // not listening yet
    }
  }

  /** SIGTERM (graceful shutdown), SIGKILL after `graceMs`. */
  async stop(graceMs = 10_000): Promise<void> {
    await this.process.kill({ graceMs });
  }

  /** Stops and starts again on the same data dir; the admin key stays valid. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  private async launch(): Promise<void> {
    const args = cli.serve({ listen: `0.0.0.0:${this.port}`, dataDir: this.dataDir, serverUrl: this.opts.advertisedUrl ?? this.url, stunListen: this.opts.stunListen });
    const logName = this.opts.name ? `weft-server-${this.opts.name}` : 'weft-server';
    this.process = this.host.spawn(process.execPath, [SERVER_BIN, ...args], { logName, env: { ...CLEAN_ENV, ...this.opts.env }, cwd: REPO });
    const p = this.process;
    await waitFor(
      async () => {
        if (!p.running) throw new GiveUp(`weft-server exited (${p.exitStatus?.code ?? p.exitStatus?.signal}):\n${p.tail(30)}`);
        return this.readyz();
      },
      { timeoutMs: this.opts.readyTimeoutMs ?? 120_000, intervalMs: 100, what: `weft-server ${this.url}/readyz` },
    );
  }
}

// ---------------------------------------------------------------------------------------------
// Agent

export interface AgentOptions {
  /** WireGuard interface; default `host.ifname('wft')`, unique on the machine. */
  iface?: string;
  listenPort?: number;
  mtu?: number;
  env?: Record<string, string>;
  /** State dir; default a fresh one under the lab temp dir. Reuse one to restart "the same node". */
  stateDir?: string;
  /** Until the daemon's socket exists. Default 20 s. */
  readyTimeoutMs?: number;
}

export interface UpOptions {
  server: string;
  authKey?: string;
  hostname?: string;
  timeoutS?: number;
  /** Of the `weft up` process. Default 60 s. */
  timeoutMs?: number;
}

/** One row of `wg show IFACE dump` after the interface line. */
export interface WgDumpPeer {
  publicKey: string;
  endpoint: string | null;
  allowedIps: string[];
  /** Unix seconds, 0 = never. */
  latestHandshake: number;
  rxBytes: number;
  txBytes: number;
}

export interface WgDump {
  publicKey: string;
  listenPort: number;
  peers: WgDumpPeer[];
}

export class WeftAgent {
  readonly socket: string;
  readonly iface: string;
  readonly stateDir: string;
  process!: LabProcess;

  private constructor(
    readonly host: Host,
    private readonly opts: AgentOptions,
  ) {
    this.iface = opts.iface ?? host.ifname('wft');
    this.stateDir = opts.stateDir ?? host.tmpPath(`agent-${this.iface}`);
    // Unix socket paths are limited to 107 bytes; keep it short and next to the state dir.
    this.socket = join(this.stateDir, 'weftd.sock');
  }

  /** Starts `weft daemon` in `host` and waits for its local socket. */
  static async start(host: Host, opts: AgentOptions = {}): Promise<WeftAgent> {
    const a = new WeftAgent(host, opts);
    await a.launch();
    return a;
  }

  /** `weft <args>` in this host; never throws on a non-zero exit. */
  cli(args: string[], timeoutMs = 30_000): Promise<ExecResult> {
    return this.host.exec(process.execPath, [AGENT_BIN, ...args], { timeoutMs, env: { ...CLEAN_ENV, ...this.opts.env }, cwd: REPO });
  }

  /** `weft up`; resolves with the exec result (check `.code`), `status` parsed when it printed one. */
  async up(o: UpOptions): Promise<ExecResult & { status: Status | null }> {
    const r = await this.cli(cli.up({ socket: this.socket, ...o }), o.timeoutMs ?? 60_000);
    let status: Status | null = null;
    if (r.code === 0) {
      try {
        status = parseJsonOutput<Status>(r, 'weft up');
      } catch {
        /* up succeeded but printed no JSON; callers can ask status() */
      }
    }
    return { ...r, status };
  }

  /**
   * Interactive `weft up` (no auth key) in the background: resolves once it printed the login URL
   * and code; `done` resolves when it exits (0 once approved).
   */
  async upInteractive(o: Omit<UpOptions, 'authKey' | 'timeoutMs'>, timeoutMs = 30_000): Promise<{ url: string; code: string; process: LabProcess; done: Promise<ExitStatus> }> {
    const p = this.host.spawn(process.execPath, [AGENT_BIN, ...cli.up({ socket: this.socket, ...o })], {
      logName: 'weft-up-interactive',
      env: { ...CLEAN_ENV, ...this.opts.env },
      cwd: REPO,
    });
    const m = await p.waitForLine(/"type"\s*:\s*"login"/, timeoutMs);
    const e = JSON.parse(m.line) as { url: string; code: string };
    return { url: e.url, code: e.code, process: p, done: p.exited };
  }

  /** Like `up` but rejects unless `weft up` exits 0. */
  async upOk(o: UpOptions): Promise<Status> {
    const r = await this.up(o);
    if (r.code !== 0) throw new ExecError(['weft', 'up', `(${this.host.name})`], r);
    return r.status ?? (await this.status());
  }

  /** `weft netcheck --json`: the report (also on exit 17, UDP blocked) and the exit code. */
  async netcheck(): Promise<{ code: number | null; report: NetcheckReport }> {
    const r = await this.cli(cli.netcheck(this.socket, true), 30_000);
    if (r.code !== 0 && r.code !== 17) throw new ExecError(['weft', 'netcheck', `(${this.host.name})`], r);
    return { code: r.code, report: parseJsonOutput<NetcheckReport>(r, 'weft netcheck') };
  }

  async status(): Promise<Status> {
    const r = await this.cli(cli.status(this.socket), 15_000);
    // Non-zero for every state but running (still with the document); anything else is a failure.
    let s: Status;
    try {
      s = parseJsonOutput<Status>(r, 'weft status');
    } catch {
      throw new ExecError(['weft', 'status', `(${this.host.name})`], r);
    }
    if (r.code !== statusExitCode(s.state)) throw new ExecError(['weft', 'status', `(${this.host.name}, state ${s.state})`], r);
    return s;
  }

  down(): Promise<ExecResult> {
    return this.cli(cli.down(this.socket));
  }

  logout(): Promise<ExecResult> {
    return this.cli(cli.logout(this.socket));
  }

  /** The node's tunnel IPv4, from the interface itself (so it works whatever status says). */
  async tunnelIp(): Promise<string | null> {
    const r = await this.host.exec('ip', ['-j', '-4', 'addr', 'show', 'dev', this.iface], { timeoutMs: 5000 });
    if (r.code !== 0) return null;
    const links = JSON.parse(r.stdout || '[]') as Array<{ addr_info?: Array<{ local?: string }> }>;
    return links[0]?.addr_info?.[0]?.local ?? null;
  }

  /** `wg show IFACE dump` inside the host; null when the interface does not exist. */
  async wgDump(): Promise<WgDump | null> {
    const r = await this.host.exec('wg', ['show', this.iface, 'dump'], { timeoutMs: 5000 });
    if (r.code !== 0) return null;
    return parseWgDump(r.stdout);
  }

  async stop(graceMs = 10_000): Promise<void> {
    await this.process.kill({ graceMs });
  }

  /** Same state dir, socket and interface: the same node coming back. */
  async restart(): Promise<void> {
    await this.stop();
    await this.launch();
  }

  /**
   * `kill -9` of the daemon alone, not its process group: its wireguard-go keeps running as an
   * orphan, as after a crash or an OOM kill. `startAgain()` brings a daemon back.
   */
  async crash(): Promise<void> {
    process.kill(this.process.pid, 'SIGKILL');
    await this.process.exited;
  }

  /** A new daemon on the same state dir, socket and interface, after `crash()`. */
  async startAgain(): Promise<void> {
    rmSync(this.socket, { force: true }); // the dead daemon's; launch waits for the new one
    await this.launch();
  }

  /** PID of the wireguard-go serving this agent's interface (there is one per name), or null. */
  wireguardGoPid(): number | null {
    for (const entry of readdirSync('/proc')) {
      if (!/^\d+$/.test(entry)) continue;
      let argv: string[];
      try {
        argv = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0');
      } catch {
        continue;
      }
      if (argv[0]?.endsWith('wireguard-go') && argv.includes(this.iface)) return Number(entry);
    }
    return null;
  }

  private async launch(): Promise<void> {
    const args = cli.daemon({ stateDir: this.stateDir, socket: this.socket, iface: this.iface, listenPort: this.opts.listenPort, mtu: this.opts.mtu });
    this.process = this.host.spawn(process.execPath, [AGENT_BIN, ...args], { logName: `weft-daemon-${this.iface}`, env: { ...CLEAN_ENV, ...this.opts.env }, cwd: REPO });
    const p = this.process;
    await waitFor(
      () => {
        if (!p.running) throw new GiveUp(`weft daemon exited (${p.exitStatus?.code ?? p.exitStatus?.signal}):\n${p.tail(30)}`);
        return existsSync(this.socket);
      },
      { timeoutMs: this.opts.readyTimeoutMs ?? 20_000, intervalMs: 50, what: `weft daemon socket ${this.socket}` },
    );
  }
}

/** "nodekey:<hex>" (how Weft writes node keys) -> base64 (how `wg show` prints them). */
export function wgKeyOf(nodeKey: string): string {
  return Buffer.from(nodeKey.replace(/^nodekey:/, ''), 'hex').toString('base64');
}

export function parseWgDump(text: string): WgDump {
  const [head, ...rows] = text.trim().split('\n');
  const h = (head ?? '').split('\t');
  return {
    publicKey: h[1] ?? '',
    listenPort: Number(h[2] ?? 0),
    peers: rows
      .filter((r) => r.trim() !== '')
      .map((r) => {
        const f = r.split('\t');
        return {
          publicKey: f[0]!,
          endpoint: f[2] && f[2] !== '(none)' ? f[2] : null,
          allowedIps: f[3] && f[3] !== '(none)' ? f[3].split(',') : [],
          latestHandshake: Number(f[4] ?? 0),
          rxBytes: Number(f[5] ?? 0),
          txBytes: Number(f[6] ?? 0),
        };
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// Whole mesh

export interface Mesh<H extends string> {
  server: WeftServer;
  authKey: string;
  agents: Record<H, WeftAgent>;
  /** Tunnel IPv4 per host, from `weft up`'s status. */
  ips: Record<H, string>;
}

/** Server in `server`, a user and a reusable auth key, then every host in `hosts` joins. */
export async function startMesh<H extends string>(lab: Lab<H | 'server'>, hosts: readonly H[], opts: { user?: string } = {}): Promise<Mesh<H>> {
  const server = await WeftServer.start(lab as Lab);
  const authKey = await server.authKey(opts.user ?? 'lab');
  const agents = {} as Record<H, WeftAgent>;
  const ips = {} as Record<H, string>;
  await Promise.all(
    hosts.map(async (h) => {
      const agent = await WeftAgent.start(lab.hosts[h]);
      agents[h] = agent;
      const st = await agent.upOk({ server: server.url, authKey, hostname: h });
      const ip = st.self?.ipv4 ?? (await agent.tunnelIp());
      if (!ip) throw new Error(`${h}: joined but has no tunnel address`);
      ips[h] = ip;
    }),
  );
  return { server, authKey, agents, ips };
}
