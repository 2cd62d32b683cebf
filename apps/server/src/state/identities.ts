/**
 * Users who sign in with an OIDC provider, keyed by issuer + subject (never by email: an address
 * can be reassigned to someone else, a subject cannot). The first sign-in creates the user, named
 * after the provider's preferred_username or email (a taken name gets a suffix: an identity never
 * takes over an existing user by name). Each sign-in stores the provider's groups on the identity
 * (`user_identities.groups`); the groups of a user's latest sign-in are policy groups
 * `group:<name>` (policy-inputs.ts `loadDirectoryGroups`), so a sign-in that changes them records
 * a `policy-changed` change (audited as `user.update`) and every replica's mapper recomputes; one
 * that carries the same groups changes nothing.
 *
 * Also the OIDC sign-ins in flight (`oidc_logins`): written at the redirect to the provider and
 * deleted by the one callback that uses them, so a replayed callback finds nothing.
 */
import { ApiError, Errors } from '../errors.js';
import { audit, SYSTEM, TX_OPTIONS, type StateContext, type Tx } from './context.js';
import { assertUsable } from './users.js';

export interface OidcIdentity {
  issuer: string;
  subject: string;
  email: string | null;
  displayName: string | null;
  /** preferred_username, or null. */
  preferredName: string | null;
  groups: string[];
}

export interface OidcLoginRequest {
  stateHash: string;
  browserHash: string;
  nonce: string;
  codeVerifier: string;
  next: string;
  expiresAt: Date;
}

/** A user name (protocol UserName: a-z 0-9 . _ @ -, starting with a letter or digit, at most 64) from what the provider calls the person. */
export function userNameFrom(id: Pick<OidcIdentity, 'preferredName' | 'email'>): string {
  const raw = id.preferredName ?? id.email?.split('@')[0] ?? '';
  const cleaned = raw.toLowerCase().normalize('NFKD').replace(/[^a-z0-9._@-]+/g, '-').replace(/^[^a-z0-9]+/, '').slice(0, 58).replace(/-+$/, '');
  return cleaned || 'user';
}

export class Identities {
  constructor(private readonly ctx: StateContext) {}

  /** The user for this identity, created on first sign-in; refused if suspended or offboarded. */
  async signIn(id: OidcIdentity): Promise<{ id: number; name: string; created: boolean }> {
    const r = await this.ctx.prisma.$transaction(async (tx) => {
      const known = await tx.userIdentity.findUnique({ where: { issuer_subject: { issuer: id.issuer, subject: id.subject } }, include: { user: true } });
      if (known) {
        try {
          assertUsable(known.user);
        } catch (err) {
          throw new ApiError(Errors.oidcFailed, (err as Error).message, { cause: err });
        }
        const before = await latestGroups(tx, known.user.id);
        await tx.userIdentity.update({ where: { id: known.id }, data: { email: id.email, groups: id.groups, lastLoginAt: new Date() } });
        const groupsChanged = !sameGroups(before, id.groups);
        if (groupsChanged) {
          await audit(tx, SYSTEM, 'user.update', `user:${known.user.name}`, { by: 'oidc', issuer: id.issuer, subject: id.subject, changed: ['groups'] }, { before: { groups: before }, after: { groups: id.groups } });
          await recordPolicyInputs(this.ctx, tx);
        }
        return { id: known.user.id, name: known.user.name, created: false, groupsChanged };
      }
      const base = userNameFrom(id);
      let name = base;
      for (let n = 2; await tx.user.findUnique({ where: { name }, select: { id: true } }); n++) name = `${base}-${n}`;
      const user = await tx.user.create({ data: { name, email: id.email, displayName: id.displayName } });
      await tx.userIdentity.create({ data: { userId: user.id, issuer: id.issuer, subject: id.subject, email: id.email, groups: id.groups } });
      await audit(tx, SYSTEM, 'user.create', `user:${user.name}`, { by: 'oidc', issuer: id.issuer, subject: id.subject, groups: id.groups });
      const groupsChanged = id.groups.length > 0;
      if (groupsChanged) await recordPolicyInputs(this.ctx, tx);
      return { id: user.id, name: user.name, created: true, groupsChanged };
    }, TX_OPTIONS);
    if (r.groupsChanged) {
      const newest = await this.ctx.prisma.policyVersion.findFirst({ orderBy: { version: 'desc' }, select: { version: true } });
      this.ctx.emit({ kind: 'policy-changed', version: newest?.version ?? 0 });
    }
    return { id: r.id, name: r.name, created: r.created };
  }

  async beginOidc(req: OidcLoginRequest): Promise<void> {
    await this.ctx.prisma.oidcLogin.create({ data: req });
  }

  /** Takes the sign-in in flight for this state, once: a second caller (a replay) gets null. */
  async consumeOidc(stateHash: string): Promise<OidcLoginRequest | null> {
    const row = await this.ctx.prisma.oidcLogin.findUnique({ where: { stateHash } });
    if (!row) return null;
    const { count } = await this.ctx.prisma.oidcLogin.deleteMany({ where: { id: row.id } });
    return count === 1 ? row : null;
  }
}

/** The groups of the user's latest sign-in (the ones policy sees), or [] before any. */
async function latestGroups(tx: Tx, userId: number): Promise<string[]> {
  const latest = await tx.userIdentity.findFirst({ where: { userId }, orderBy: [{ lastLoginAt: 'desc' }, { id: 'desc' }], select: { groups: true } });
  return latest?.groups ?? [];
}

function sameGroups(a: readonly string[], b: readonly string[]): boolean {
  const [x, y] = [[...new Set(a)].sort(), [...new Set(b)].sort()];
  return x.length === y.length && x.every((g, i) => g === y[i]);
}

/** Sign-in groups are policy inputs: the mapper reloads the policy (the version in force stays). Last statement of the transaction. */
async function recordPolicyInputs(ctx: StateContext, tx: Tx): Promise<void> {
  const newest = await tx.policyVersion.findFirst({ orderBy: { version: 'desc' }, select: { version: true } });
  await ctx.record(tx, { kind: 'policy-changed', version: newest?.version ?? 0 });
}
