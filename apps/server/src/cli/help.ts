/** `--help` text for every level of `weft-server`: the program, `serve`, and each admin noun. */
import { PROTOCOL_VERSION } from '@weft/protocol';
import { SERVER_VERSION } from '../version.js';

export const VERSION_TEXT = `weft-server ${SERVER_VERSION} (agent protocol ${PROTOCOL_VERSION})`;

export const SERVE_USAGE = `Usage: weft-server serve [--config FILE] [--listen HOST:PORT] [--stun-listen HOST:PORT|off] [--relay on|off]
                         [--data-dir DIR] [--database-url URL] [--server-url URL] [--log-level LEVEL] [--log-format json|pretty]
                         [--metrics-listen HOST:PORT] [--tls-cert FILE --tls-key FILE]
  Runs the control server. Config comes from the JSON file (--config or WEFT_CONFIG), then WEFT_*
  environment variables (WEFT_LISTEN, WEFT_STUN_LISTEN, WEFT_RELAY, WEFT_DATA_DIR, WEFT_DATABASE_URL or DATABASE_URL,
  WEFT_SERVER_URL, WEFT_LOG_LEVEL, WEFT_LOG_FORMAT, WEFT_METRICS_LISTEN, WEFT_METRICS_TOKEN, WEFT_TLS_CERT,
  WEFT_TLS_KEY, and for sign-in with an OIDC provider WEFT_OIDC_ISSUER, WEFT_OIDC_CLIENT_ID,
  WEFT_OIDC_CLIENT_SECRET or WEFT_OIDC_CLIENT_SECRET_FILE, WEFT_OIDC_REDIRECT_URL, WEFT_OIDC_GROUPS_CLAIM), then flags.
  --listen        host:port to listen on (default 127.0.0.1:8080)
  --stun-listen   UDP host:port of the STUN service, [::]:PORT for IPv4 and IPv6, or off (default 0.0.0.0:3478)
  --relay         on|off: the packet relay for nodes with no direct path, WebSocket /api/v1/relay on
                  the main port (default on)
  --data-dir      embedded database and admin socket (default ./data)
  --database-url  postgres://... instead of the embedded database
  --server-url    the URL agents and browsers use (default http://HOST:PORT of --listen, https:// with --tls-cert)
  --log-level     fatal|error|warn|info|debug|trace (default info; each request is logged at debug)
  --log-format    json or pretty (default pretty on a terminal, json otherwise)
  --metrics-listen  host:port of a separate listener for Prometheus metrics at /metrics (default
                  none); or set metricsToken (config/env only) to serve /metrics on the main port
  --tls-cert, --tls-key  PEM certificate chain and its key: serve HTTPS and WSS on --listen; either
                  file changing reloads both without a restart (a bad new pair keeps the old one)`;

const COMMON = `Common flags: --json  --data-dir DIR (default ./data, env WEFT_DATA_DIR)  --socket PATH
              --server URL (env WEFT_SERVER)  --api-key KEY (env WEFT_API_KEY)  --help`;

export const NOUN_USAGE = {
  users: `  weft-server users list | create NAME [--display-name TEXT] [--email ADDR] | get NAME | delete NAME
  weft-server users suspend NAME     cut every device of NAME off (refused until resumed), revoke their auth keys
  weft-server users resume NAME      let a suspended user's devices back
  weft-server users offboard NAME [--yes]
      final: delete every device of NAME, revoke their auth keys, keep the user as offboarded
      (asks for confirmation on a terminal; --yes skips it, and is needed when not on a terminal)`,
  nodes: `  weft-server nodes list | get ID | delete ID | expire ID | rename ID NAME
  weft-server nodes tag NAME tag:a,tag:b
      (replaces the node's tags; "-" removes them all. Each must be defined in the policy's tagOwners)
  weft-server nodes expiry ID --disable | --enable | --extend DAYS
      (--disable: the key never expires; --enable: it expires the tailnet default from now;
       --extend: DAYS (1-180) more, from the later of now and its expiry; an expired node is back at once)
  weft-server nodes pending           devices waiting for sign-in (CODE) and for an admin's approval (ID)
  weft-server nodes approve CODE [--user NAME]
      (with one user, the device is theirs; with several, asks which on a terminal, else --user is needed)
  weft-server nodes approve ID        let in a device waiting for an admin (device-approval-required on)
  weft-server nodes add-peer HOSTNAME --user NAME [--tags tag:a] [--out FILE.conf] [--qr-png FILE.png]
      (a node-less peer such as a phone: a wg-quick config and a QR code for the WireGuard app;
       with --out the private key goes only to that file, written 0600; --tags as for nodes tag)`,
  authkeys: `  weft-server authkeys list | create --user NAME [--reusable] [--ephemeral] [--pre-approved] [--tags tag:a,tag:b] [--expiration 1h|0] | revoke ID
      (--pre-approved: its devices skip admin approval when device-approval-required is on;
       --tags: each defined in the policy's tagOwners when the key is made; its devices get them)`,
  audit: `  weft-server audit list [--since TIME] [--until TIME] [--action PREFIX] [--actor LABEL] [--target KIND:NAME] [--limit N]
      (oldest first, one page of --limit (100); --since 1h for recent events. TIME is ISO 8601 or a
       duration ago such as 15m, 24h, 7d)
  weft-server audit export --since TIME [--until TIME] [--action PREFIX] [--actor LABEL] [--target KIND:NAME]
      every matching event as JSON lines on stdout, streamed page by page`,
  apikeys: `  weft-server apikeys list | create --scopes admin|read[,..] [--description TEXT] [--expiration 90d|0] | revoke ID
      (OWNER is the signed-in user who made the key, revoked with them when suspended or offboarded;
       none for keys made here, through the admin socket)`,
  scim: `  weft-server scim token create [--description TEXT] [--expiration 365d|0] | token list | token revoke ID
      a bearer token for an identity provider's SCIM provisioning client, at <server URL>/scim/v2.
      Shown once at creation, stored hashed. A SCIM token can do SCIM only (scope scim); no admin
      API key can do SCIM.`,
  settings: `  weft-server settings get
  weft-server settings set node-key-expiry-days DAYS      default key expiry of joining and renewing nodes (1-180; default 180)
  weft-server settings set device-approval-required on|off  new devices wait for an admin's approval (default off)`,
  admin: `  weft-server admin set-password [--user NAME]
      sets the password of a local account for the web sign-in (default user admin, created if
      missing; a user with a password is an admin). Asks twice on a terminal, without echo;
      otherwise reads the first line of stdin. Never takes the password as an argument.`,
} as const;
export type Noun = keyof typeof NOUN_USAGE;

const REACH = `Admin commands reach a running server through <data-dir>/weft-server.sock, or any server with --server URL --api-key KEY.`;

export const ADMIN_USAGE = `${REACH}\n${Object.values(NOUN_USAGE).join('\n')}\n${COMMON}`;

export function nounUsage(noun: Noun): string {
  return `Usage:\n${NOUN_USAGE[noun]}\n${REACH}\n${COMMON}`;
}

export const POLICY_USAGE = `Usage:
  weft-server policy get                     the policy in force: its text on stdout, version on stderr
  weft-server policy set FILE [--if-match N] store FILE as the new version (judged first: its tests
                                             must pass against the nodes on the server)
  weft-server policy check FILE              judge FILE against the server's nodes, store nothing
  weft-server policy history [--limit N] [--before VERSION] [--diff]
                                             versions, newest first: who, when, lines changed
  weft-server policy rollback VERSION [--if-match N]
                                             a new version with VERSION's text (judged again first)
  weft-server policy explain SRC DST[:PORT] [--proto tcp|udp|icmp|NAME|NUMBER]
      may SRC reach DST, by the policy in force, and which rule (its line) allows it. SRC and DST:
      a node name, a user's name or login (their untagged nodes), tag:NAME, or an IP ([v6]:PORT
      with a port); node:NAME or user:NAME when a node and a user share a name. Without a port:
      the ports allowed. --proto defaults to tcp.
  set and rollback send If-Match with the version in force when they start (--if-match N: the
  version your edit was made from), so a change made meanwhile is refused, never overwritten.
  These reach the server through <data-dir>/weft-server.sock, or --server URL --api-key KEY.
  With no policy stored, every node may reach every node (version 0).
  Exit: 0 ok (explain: allowed), 1 refused (a rejected policy, every reason as FILE:LINE:COL: message;
  a stale version; explain: denied), 2 usage (or an unreadable FILE), 3 server unreachable.
${COMMON}

  weft-server policy compile POLICY_FILE --nodes NODES_JSON [--json]
  Evaluates a policy (Tailscale-compatible HuJSON: groups, hosts, tagOwners, ipsets, acls, grants,
  autoApprovers, tests) against the nodes in NODES_JSON. No server or database is needed.
  NODES_JSON: {"users":[{"id":1,"name":"odin","login":"odin@example.com"}],
               "nodes":[{"id":1,"name":"web-1","user":"odin@example.com","tags":[],
                         "ipv4":"100.64.0.1","ipv6":"fd7a::1","advertisedRoutes":[],"approvedRoutes":[]}]}
    user is the owner's login, null for a tagged node; approvedRoutes is final.
  Output (--json): {"nodes":{"web-1":{"rules":[{"srcIPs":["100.64.0.2","fd7a::2"],
                     "dstPorts":[{"ip":"100.64.0.1","ports":"22-22"}],"protos":[6]}],"peers":["db-1"]}}}
    one entry per node: the packet-filter rules for traffic arriving at it (sources as addresses or
    CIDRs, "*" for any; destinations with a port range; IANA protocol numbers, a rule without
    "proto" being [1,6,17,58]) and the names of the peers it may see. Without --json: a summary.
  Exit: 0 accepted (result on stdout), 1 policy rejected (syntax, validation, a failing test; every
  reason on stderr as FILE:line:col: message), 2 usage (bad flags, an unreadable file, a malformed
  NODES_JSON).`;

export const DB_USAGE = `Usage:
  weft-server backup FILE [--data-dir DIR | --socket PATH | --server URL --api-key KEY] [--json]
      a consistent snapshot of the whole database from the running server, written 0600 to FILE
      (users, nodes, keys as hashes, policy, audit, settings, sequence positions)
  weft-server restore FILE --data-dir DIR | --database-url postgres://... [--json]
      loads a backup into a fresh data directory or an empty Postgres database (no server running
      on it); every table's rows and checksum are verified before anything is committed
  weft-server db copy --to postgres://... [--data-dir DIR] [--json]
      moves the embedded database in DIR to an empty Postgres database, verified table by table;
      stop the server first, then start it with --database-url. Agents carry on without re-enrolling.
  Exit: 0 done, 1 refused (the target is not empty, a snapshot is truncated or does not match, the
  server refused), 2 usage or an unreadable/unwritable file, 3 server or database unreachable.`;

export const USAGE = `Usage:
  weft-server serve [flags]     run the control server (weft-server serve --help)
  weft-server policy get|set FILE|check FILE|history|rollback VERSION|explain SRC DST[:PORT]   the access policy
  weft-server policy compile POLICY_FILE --nodes NODES_JSON [--json]   preview a policy offline
  weft-server backup FILE | restore FILE --data-dir DIR | db copy --to URL   (weft-server db --help)
  weft-server relay-secret --out FILE   the relay mesh secret for a standalone weft-relay (weft-server relay-secret --help)
  weft-server users|nodes|authkeys|apikeys|scim|audit|admin ...   the admin CLI (weft-server nodes --help)
  weft-server --version
${SERVE_USAGE.split('\n').slice(2).join('\n')}

${ADMIN_USAGE}`;
