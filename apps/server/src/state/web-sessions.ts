/**
 * Browser sessions. The session id is 32 random bytes, sent only in the browser's cookie; the
 * database keeps its SHA-256, so a database reader cannot act as anyone. A session ends at a fixed
 * age, after an idle time, when its user signs out, and when the user is suspended or offboarded
 * (checked on every request). Its role is the user's, read on every request: `admin` for a local
 * account (state/local-accounts.ts) or a member of a configured admin group at the identity
 * provider, else `member`.
 */
import { randomBytes } from 'node:crypto';
import { hashSecret } from '@weft/crypto';
import { audit, type Actor, type StateContext } from './context.js';

export type SessionRole = 'admin' | 'member';
export type SignInMethod = 'password' | 'oidc';

export interface SessionUser {
  sessionId: number;
  userId: number;
  userName: string;
  role: SessionRole;
  method: SignInMethod;
  expiresAt: Date;
  /** When the session ends if no request comes before. */
  idleExpiresAt: Date;
}

export interface SessionTimings {
  maxAgeMs: number;
  idleTimeoutMs: number;
  touchIntervalMs: number;
}

/** The shape of a session id in a cookie: 32 bytes, base64url. */
export const SESSION_TOKEN = /^[A-Za-z0-9_-]{43}$/;

export const userActor = (u: { userId: number; userName: string }, ip?: string): Actor => ({ type: 'user', id: String(u.userId), name: u.userName, origin: 'ui', ...(ip ? { ip } : {}) });

export class WebSessions {
  constructor(private readonly ctx: StateContext, private readonly timings: SessionTimings, private readonly adminGroups: readonly string[]) {}

  /** Starts a session for a user who just proved who they are; audited as their sign-in. */
  async create(user: { id: number; name: string }, method: SignInMethod, ip: string | undefined): Promise<{ token: string; expiresAt: Date }> {
    const token = randomBytes(32).toString('base64url');
    const expiresAt = new Date(Date.now() + this.timings.maxAgeMs);
    await this.ctx.prisma.$transaction(async (tx) => {
      await tx.webSession.create({ data: { tokenHash: hashSecret(token), userId: user.id, method, expiresAt, ip: ip ?? null } });
      await audit(tx, userActor({ userId: user.id, userName: user.name }, ip), 'auth.sign-in', `user:${user.name}`, { method });
    });
    return { token, expiresAt };
  }

  /** The signed-in user behind `token`, or null (unknown, ended, expired, idle, or the user may no longer sign in). */
  async authenticate(token: string): Promise<SessionUser | null> {
    if (!SESSION_TOKEN.test(token)) return null;
    const s = await this.ctx.prisma.webSession.findUnique({
      where: { tokenHash: hashSecret(token) },
      include: { user: { include: { localCredential: { select: { userId: true } }, identities: { select: { groups: true } } } } },
    });
    if (!s) return null;
    const now = Date.now();
    const idleEnd = s.lastSeenAt.getTime() + this.timings.idleTimeoutMs;
    if (s.expiresAt.getTime() <= now || idleEnd <= now || s.user.suspendedAt || s.user.offboardedAt) {
      await this.ctx.prisma.webSession.deleteMany({ where: { id: s.id } });
      return null;
    }
    let lastSeen = s.lastSeenAt.getTime();
    if (now - lastSeen >= this.timings.touchIntervalMs) {
      lastSeen = now;
      await this.ctx.prisma.webSession.updateMany({ where: { id: s.id }, data: { lastSeenAt: new Date(now) } });
    }
    const groups = s.user.identities.flatMap((i) => i.groups);
    const admin = s.user.localCredential !== null || groups.some((g) => this.adminGroups.includes(g));
    return {
      sessionId: s.id,
      userId: s.userId,
      userName: s.user.name,
      role: admin ? 'admin' : 'member',
      method: s.method as SignInMethod,
      expiresAt: s.expiresAt,
      idleExpiresAt: new Date(Math.min(s.expiresAt.getTime(), lastSeen + this.timings.idleTimeoutMs)),
    };
  }

  /** Sign-out: the session is deleted, so the cookie is worth nothing even if the browser keeps it. */
  async end(session: SessionUser, ip: string | undefined): Promise<void> {
    await this.ctx.prisma.$transaction(async (tx) => {
      const { count } = await tx.webSession.deleteMany({ where: { id: session.sessionId } });
      if (count) await audit(tx, userActor(session, ip), 'auth.sign-out', `user:${session.userName}`, { method: session.method });
    });
  }

  /**
   * A sign-in that was refused, audited without the password: the account name tried (if any),
   * the method and why. `anonymous` is the actor: nobody proved who they are.
   */
  async recordFailure(ip: string | undefined, method: SignInMethod, name: string | null, reason: string): Promise<void> {
    await this.ctx.prisma.$transaction(async (tx) => {
      await audit(tx, { type: 'anonymous', origin: 'ui', ...(ip ? { ip } : {}) }, 'auth.sign-in-failed', name ? `user:${name.slice(0, 64)}` : null, { method, reason });
    });
  }

  /** Deletes sessions past their end or idle too long, and OIDC sign-ins never completed; returns how many. */
  async reapExpired(): Promise<number> {
    const now = Date.now();
    const sessions = await this.ctx.prisma.webSession.deleteMany({
      where: { OR: [{ expiresAt: { lte: new Date(now) } }, { lastSeenAt: { lte: new Date(now - this.timings.idleTimeoutMs) } }] },
    });
    const oidc = await this.ctx.prisma.oidcLogin.deleteMany({ where: { expiresAt: { lte: new Date(now) } } });
    return sessions.count + oidc.count;
  }
}
