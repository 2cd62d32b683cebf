/**
 * NAT routers for the lab: a router is a namespace (`wl-LAB-r-NAME`) with `wan` plugged into an
 * upstream network (the lab LAN, which plays the internet, or another router's inside) and a bridge
 * `br0` for its inside network. Hosts (and other routers) are moved behind it by re-plugging their
 * eth0 (`wan`); their processes keep running, only the address changes, as when a laptop roams.
 *
 *   lab LAN 10.77.0.0/24 (server, hosts not behind a router)
 *     |-- wan 10.77.0.200  router "home"   br0 192.168.1.1/24 -- eth0 of a (192.168.1.11), b (.12)
 *     '-- wan 10.77.0.201  router "isp"    br0 100.64.2.1/24
 *                                            '-- wan 100.64.2.200  router "cpe"  br0 192.168.3.1/24 -- c
 *
 * NAT is nftables on the router (there is no iptables here); see `NatType` for what each type is and
 * README.md for what was measured. Unsolicited packets from upstream are dropped before conntrack
 * confirms them (filter input/forward), so a probe that reaches the router before the host behind
 * it has sent anything leaves no entry that would steal the host's later mapping.
 *
 * The lab owns router namespaces like host namespaces: `lab.cleanup()` (and the exit hooks, and the
 * next run's sweep) removes them.
 */
import { execOkIn, type ExecResult } from './exec.js';
import type { Host } from './host.js';
import { requireBinaries } from './preflight.js';

/**
 * - `eim`: endpoint-independent mapping with port preservation (`masquerade`). One inside
 *   address:port keeps one outside port whatever the destination, and keeps its own port number
 *   when it is free. Filtering is address-and-port dependent (only replies come back).
 * - `eim-persistent`: `masquerade persistent`: the same, and an inside address keeps its outside
 *   address across connections (matters only with more than one outside address).
 * - `eim-no-preserve`: endpoint-independent, but UDP is mapped into 20000-30000 so the outside
 *   port is never the inside one (`meta l4proto udp masquerade to :20000-30000`, then `masquerade`
 *   for the rest).
 * - `edm`: endpoint-dependent ("symmetric"): `masquerade fully-random`: every new destination gets a
 *   new random outside port, so a port learned from one server is useless to another.
 * - `udp-blocked`: TCP and ICMP out only (EIM for those); every UDP datagram from inside is dropped
 *   silently, as on a locked-down corporate network.
 * - `none`: routes without translation (tests of the router itself).
 */
export type NatType = 'eim' | 'eim-persistent' | 'eim-no-preserve' | 'edm' | 'udp-blocked' | 'none';

const MASQUERADE: Record<NatType, string | null> = {
  eim: 'masquerade',
  'eim-persistent': 'masquerade persistent',
  'eim-no-preserve': 'meta l4proto udp masquerade to :20000-30000\n    oifname "wan" masquerade',
  edm: 'masquerade fully-random',
  'udp-blocked': 'masquerade',
  none: null,
};

/** What a router or host plugs its uplink into. */
export interface Network {
  readonly name: string;
  /** Namespace holding the bridge `br0`. */
  readonly ns: string;
  /** First three octets of the /24. */
  readonly subnet: string;
  /** Default gateway for what plugs in; null on the lab LAN (flat, no gateway). */
  readonly gateway: string | null;
}

/** What nat.ts needs from the lab. */
export interface RouterOwner {
  readonly name: string;
  readonly internet: Network;
  assertOpen(what: string): void;
  /** The lab removes the namespace at cleanup. */
  adoptNamespace(ns: string): void;
}

export interface RouterOptions {
  nat: NatType;
  /** Where `wan` plugs in. Default the lab LAN (the internet). */
  upstream?: Network | Router;
  /** First three octets of the inside /24. Default 192.168.(router number). */
  subnet?: string;
}

const ROUTER_RE = /^[a-z][a-z0-9]{0,9}$/;
const ip = (...args: string[]) => execOkIn(null, 'ip', args, { timeoutMs: 10_000 });

/** Port names on a bridge: `vh<index>` for hosts, `vr<number>` for routers; unique per bridge. */
const hostPort = (h: Host) => `vh${h.index}`;

/** Where each host is plugged in now (hosts start on the lab LAN). */
const hostNetworks = new WeakMap<Host, Network>();

export class Router implements Network {
  readonly ns: string;
  readonly subnet: string;
  readonly gateway: string;
  /** `wan` address on the upstream network. */
  readonly wanIp: string;
  readonly upstream: Network;

  private constructor(
    private readonly owner: RouterOwner,
    readonly name: string,
    /** 0-based, lab-wide: wan is upstream .(200 + number), the default inside is 192.168.(number + 1). */
    readonly number: number,
    readonly nat: NatType,
    upstream: Network,
    subnet: string | undefined,
  ) {
    this.ns = `wl-${owner.name}-r-${name}`;
    this.subnet = subnet ?? `192.168.${number + 1}`;
    this.gateway = `${this.subnet}.1`;
    this.upstream = upstream;
    this.wanIp = `${upstream.subnet}.${200 + number}`;
  }

  /** @internal Lab.addRouter. */
  static async create(owner: RouterOwner, name: string, number: number, opts: RouterOptions): Promise<Router> {
    owner.assertOpen(`add router ${name}`);
    requireBinaries(['nft', 'conntrack', 'sysctl']);
    if (!ROUTER_RE.test(name)) throw new Error(`router name ${JSON.stringify(name)} must be a-z then up to 9 of a-z 0-9`);
    if (number > 50) throw new Error('a lab has at most 50 routers');
    const upstream = opts.upstream ?? owner.internet;
    const r = new Router(owner, name, number, opts.nat, upstream, opts.subnet);
    await ip('netns', 'add', r.ns);
    owner.adoptNamespace(r.ns);
    await ip('-n', r.ns, 'link', 'set', 'lo', 'up');
    await ip('-n', r.ns, 'link', 'add', 'br0', 'type', 'bridge');
    await ip('-n', r.ns, 'addr', 'add', `${r.gateway}/24`, 'dev', 'br0');
    await ip('-n', r.ns, 'link', 'set', 'br0', 'up');
    await plug(r.ns, 'wan', upstream, `vr${number}`, r.wanIp);
    await r.sysctl('net.ipv4.ip_forward=1');
    // br_netfilter is loaded on this machine: without these, frames between two hosts on the
    // router's inside bridge would pass its forward chain (policy drop) and its conntrack.
    await r.sysctl('net.bridge.bridge-nf-call-iptables=0');
    await r.sysctl('net.bridge.bridge-nf-call-ip6tables=0');
    await r.sysctl('net.bridge.bridge-nf-call-arptables=0');
    await r.nft(rules(opts.nat));
    await r.flushConntrack();
    return r;
  }

  /**
   * Moves `host` behind this router (from wherever it is: the lab LAN or another router): eth0 is
   * replaced, the host gets `.(10 + index)` of the inside /24 and a default route via the router.
   * Conntrack of the router it left and of this one is flushed, so old mappings don't leak into
   * the next case.
   */
  async attach(host: Host): Promise<void> {
    await attachHost(host, this);
  }

  /** Drops every connection-tracking entry (mappings included) on this router. */
  async flushConntrack(): Promise<void> {
    // Exit 1 with "0 flow entries" when the table is already empty: not an error.
    const r = await execOkIn(this.ns, 'conntrack', ['-F'], { timeoutMs: 10_000 }).catch((e: { result?: ExecResult }) => e.result);
    if (r && r.code !== 0 && !/0 flow entries/.test(r.stderr)) throw new Error(`conntrack -F in ${this.ns} failed: ${r.stderr.trim()}`);
  }

  /** `conntrack -L` as text (for a failing test's message). */
  async conntrack(): Promise<string> {
    const r = await execOkIn(this.ns, 'conntrack', ['-L'], { timeoutMs: 10_000 }).catch((e: { result?: ExecResult }) => e.result);
    return r ? r.stdout : '';
  }

  /** Applies an nftables script in the router's namespace (`nft -f -`). */
  async nft(script: string): Promise<void> {
    this.owner.assertOpen(`configure router ${this.name}`);
    await execOkIn(this.ns, 'nft', ['-f', '-'], { input: script, timeoutMs: 10_000 });
  }

  private async sysctl(kv: string): Promise<void> {
    await execOkIn(this.ns, 'sysctl', ['-qw', kv], { timeoutMs: 10_000 });
  }
}

/**
 * Moves `host` onto `network` (a router's inside, or the lab LAN to leave every router): the old
 * eth0 is deleted (its peer port goes with it), a new one plugged in: `.(10 + index)` of that
 * network, so back on the lab LAN the host has its original address again.
 */
export async function attachHost(host: Host, network: Network): Promise<void> {
  const from = hostNetworks.get(host);
  await ip('-n', host.ns, 'link', 'del', 'eth0').catch(() => {});
  const addr = `${network.subnet}.${10 + host.index}`;
  await plug(host.ns, 'eth0', network, hostPort(host), addr);
  host.setAddress(addr);
  hostNetworks.set(host, network);
  for (const n of [from, network]) if (n instanceof Router) await n.flushConntrack();
}

/** A veth: `ifname` (with `addr`/24) in `ns`, its peer `port` on `network`'s bridge. */
async function plug(ns: string, ifname: string, network: Network, port: string, addr: string): Promise<void> {
  await ip('-n', ns, 'link', 'add', ifname, 'type', 'veth', 'peer', 'name', port, 'netns', network.ns);
  await ip('-n', network.ns, 'link', 'set', port, 'master', 'br0', 'up');
  await ip('-n', ns, 'addr', 'add', `${addr}/24`, 'dev', ifname);
  await ip('-n', ns, 'link', 'set', ifname, 'up');
  if (network.gateway !== null) await ip('-n', ns, 'route', 'add', 'default', 'via', network.gateway);
}

/** The router's whole ruleset: translation, forwarding policy, no unsolicited inbound. */
export function rules(nat: NatType): string {
  const masq = MASQUERADE[nat];
  return [
    'flush ruleset',
    'table ip nat {',
    '  chain postrouting {',
    '    type nat hook postrouting priority srcnat; policy accept;',
    masq ? `    oifname "wan" ${masq}` : '',
    '  }',
    '}',
    'table inet filter {',
    // Dropped here, an unsolicited packet's conntrack entry is never confirmed (confirmation is the
    // last step of the input/postrouting hooks), so it cannot claim a port before the inside host does.
    '  chain input {',
    '    type filter hook input priority filter; policy accept;',
    '    iifname "wan" ct state established,related accept',
    '    iifname "wan" meta l4proto icmp accept',
    '    iifname "wan" drop',
    '  }',
    '  chain forward {',
    '    type filter hook forward priority filter; policy drop;',
    '    ct state established,related accept',
    nat === 'udp-blocked' ? '    iifname "br0" oifname "wan" meta l4proto udp drop' : '',
    '    iifname "br0" oifname "wan" accept',
    nat === 'none' ? '    iifname "wan" oifname "br0" accept' : '',
    '  }',
    '}',
    '',
  ].filter((l) => l !== '').join('\n');
}
