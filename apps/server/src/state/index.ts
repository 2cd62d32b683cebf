/**
 * The one write path (docs/style.md 3). Every change to users, nodes, keys, logins and the policy goes through
 * here, is audited and recorded in the change outbox in the same transaction, and emits a change descriptor for the mapper. Route
 * handlers validate, call state, and shape the reply; they never touch Prisma.
 */
import type { PrismaClient } from '@weft/db';
import { generateResponderPrivateKey } from '@weft/relay';
import { ApiKeys } from './api-keys.js';
import { AuditLog } from './audit-log.js';
import { AuthKeys } from './auth-keys.js';
import { generateUlaPrefix } from './addresses.js';
import type { ChangeSink } from './changes.js';
import type { Actor, ChangeRecorder, StateContext } from './context.js';
import { Identities } from './identities.js';
import { LocalAccounts } from './local-accounts.js';
import { Logins } from './logins.js';
import { Nodes } from './nodes.js';
import { NodeLinks } from './node-links.js';
import { PolicyStore } from './policy.js';
import { exportRelayMeshSecret, relayMeshSecret } from './relay-secret.js';
import { NatVerdicts } from './nat.js';
import { Presence } from './presence.js';
import { TailnetSettingsStore } from './tailnet-settings.js';
import { Users } from './users.js';
import { Scim } from './scim.js';
import { WebSessions, type SessionTimings } from './web-sessions.js';

export type { Change, ChangeSink, PresenceChange } from './changes.js';
export type { Actor, Origin } from './context.js';
export { SYSTEM, actorLabel } from './context.js';
export type { ApiPrincipal } from './api-keys.js';
export type { NodeWithUser } from './dto.js';
export type { SessionUser, SessionRole, SignInMethod, SessionTimings } from './web-sessions.js';
export { userActor } from './web-sessions.js';
export type { OidcIdentity } from './identities.js';
export { peerDto, selfDto, isExpired, policyLogin } from './dto.js';

/** Web sessions: their timings, and the identity-provider groups whose members are admins. */
export interface WebOptions { sessions: SessionTimings; adminGroups: readonly string[] }

export class State {
  readonly users: Users;
  readonly authKeys: AuthKeys;
  readonly apiKeys: ApiKeys;
  readonly logins: Logins;
  readonly nodes: Nodes;
  readonly presence: Presence;
  /** Netcheck verdicts carried to the other replicas (in memory, through the outbox). */
  readonly nat: NatVerdicts;
  /** Link reports (telemetry: not audited, no outbox). */
  readonly links: NodeLinks;
  readonly audit: AuditLog;
  readonly policy: PolicyStore;
  readonly sessions: WebSessions;
  readonly localAccounts: LocalAccounts;
  readonly identities: Identities;
  readonly scim: Scim;
  readonly settings: TailnetSettingsStore;

  private constructor(readonly ctx: StateContext, replica: { id: string; log: ConstructorParameters<typeof Presence>[2] }, web: WebOptions) {
    this.users = new Users(ctx);
    this.authKeys = new AuthKeys(ctx);
    this.apiKeys = new ApiKeys(ctx);
    this.settings = new TailnetSettingsStore(ctx);
    this.logins = new Logins(ctx, this.settings);
    this.nodes = new Nodes(ctx, this.authKeys, this.logins, this.settings);
    this.presence = new Presence(ctx, replica.id, replica.log);
    this.nat = new NatVerdicts(ctx, replica.id, replica.log);
    this.links = new NodeLinks(ctx);
    this.audit = new AuditLog(ctx);
    this.policy = new PolicyStore(ctx);
    this.sessions = new WebSessions(ctx, web.sessions, web.adminGroups);
    this.localAccounts = new LocalAccounts(ctx);
    this.identities = new Identities(ctx);
    this.scim = new Scim(ctx, this.users);
  }

  /** `replica`: this process's id in `replicas` and where presence logs its retries. */
  static async open(opts: {
    prisma: PrismaClient;
    record: ChangeRecorder;
    emit: ChangeSink;
    serverUrl: string;
    loginTimeoutS: number;
    maxPendingLogins: number;
    replica: { id: string; log: ConstructorParameters<typeof Presence>[2] };
    web: WebOptions;
  }): Promise<State> {
    const { replica, web, ...rest } = opts;
    const ulaPrefix = await deploymentUlaPrefix(opts.prisma);
    return new State({ ...rest, ulaPrefix }, replica, web);
  }

  /**
   * The deployment's WireGuard responder private key (32 bytes), made on the first start. One
   * for the deployment, so any replica behind one address authenticates any node's initiations.
   * Never logged; the public half goes out in netmaps.
   */
  async wgResponderPrivateKey(): Promise<Uint8Array> {
    const prisma = this.ctx.prisma;
    await prisma.setting.createMany({ data: [{ key: WG_RESPONDER_SETTING, value: Buffer.from(generateResponderPrivateKey()).toString('base64') }], skipDuplicates: true });
    const row = await prisma.setting.findUniqueOrThrow({ where: { key: WG_RESPONDER_SETTING } });
    const key = Buffer.from(row.value, 'base64');
    if (key.length !== 32) throw new Error(`setting ${WG_RESPONDER_SETTING} does not hold a 32-byte key (base64)`);
    return new Uint8Array(key);
  }

  /** The relay mesh's shared secret (32 bytes): made by whichever replica asks first, then read by all. */
  relayMeshSecret(): Promise<Buffer> {
    return relayMeshSecret(this.ctx.prisma);
  }

  /** The relay mesh secret for an operator (`weft-server relay-secret`): made if missing, audited. */
  exportRelayMeshSecret(actor: Actor): Promise<Buffer> {
    return exportRelayMeshSecret(this.ctx.prisma, actor);
  }

  async ping(): Promise<void> {
    await this.ctx.prisma.$queryRawUnsafe('SELECT 1');
  }
}

const WG_RESPONDER_SETTING = 'wg_responder_private_key';

/** The /48 chosen on the deployment's first start; replicas racing to choose agree on one. */
async function deploymentUlaPrefix(prisma: PrismaClient): Promise<string> {
  await prisma.setting.createMany({ data: [{ key: 'ula_prefix', value: generateUlaPrefix() }], skipDuplicates: true });
  const row = await prisma.setting.findUniqueOrThrow({ where: { key: 'ula_prefix' } });
  return row.value;
}
