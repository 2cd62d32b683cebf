/**
 * The write path of SCIM provisioning (apps/server/src/scim/): users and groups a provisioning
 * client pushes. A SCIM user is a Weft user (its SCIM id is the user id); `active` false suspends
 * it and true resumes it, and DELETE offboards it, through `Users` (the same operations, events
 * and cut-offs as the REST API). Offboarded users are gone for SCIM (404), and their name stays
 * taken. Groups are kept here (`scim_groups`); their members are in the access policy as
 * `group:<displayName>` (policy-inputs.ts `loadDirectoryGroups`), so a membership change records
 * a `policy-changed` change and every replica's mapper recomputes. Every write is audited with
 * the caller's actor (origin `scim`).
 */
import type { Prisma, ScimGroup, ScimGroupMember, User as DbUser } from '@weft/db';
import { invalidValue, notFound, ScimError } from '../scim/errors.js';
import type { GroupFields, UserFields } from '../scim/resources.js';
import { audit, isUniqueViolation, TX_OPTIONS, type Actor, type StateContext, type Tx } from './context.js';
import type { Users } from './users.js';

export type ScimUserRow = DbUser & { scimGroups: (ScimGroupMember & { group: Pick<ScimGroup, 'id' | 'displayName'> })[] };
export type ScimGroupRow = ScimGroup & { members: (ScimGroupMember & { user: Pick<DbUser, 'id' | 'name'> })[] };

const userInclude = { scimGroups: { include: { group: { select: { id: true, displayName: true } } }, orderBy: { groupId: 'asc' } } } as const;
/** Members as SCIM shows them: offboarded users are gone for SCIM, so they are not listed either. */
const groupInclude = { members: { where: { user: { offboardedAt: null } }, include: { user: { select: { id: true, name: true } } }, orderBy: { userId: 'asc' } } } as const;

export interface Page<T> { total: number; rows: T[] }
/** Equality constraints from a list filter (scim/filter.ts `listConstraints`), all of which must hold. */
export type Constraint = { attr: string; value: string };

const uniqueness = (detail: string) => new ScimError(409, detail, 'uniqueness');

export class Scim {
  constructor(private readonly ctx: StateContext, private readonly users: Users) {}

  // ---- users ----

  async getUser(id: number): Promise<ScimUserRow> {
    const u = await this.ctx.prisma.user.findFirst({ where: { id, offboardedAt: null }, include: userInclude });
    if (!u) throw notFound(`no user with id "${id}"`);
    return u;
  }

  async listUsers(where: Constraint[], startIndex: number, count: number): Promise<Page<ScimUserRow>> {
    const w: Prisma.UserWhereInput = { offboardedAt: null, AND: where.map(userConstraint) };
    const [total, rows] = await Promise.all([
      this.ctx.prisma.user.count({ where: w }),
      count === 0 ? [] : this.ctx.prisma.user.findMany({ where: w, include: userInclude, orderBy: { id: 'asc' }, skip: startIndex - 1, take: count }),
    ]);
    return { total, rows };
  }

  async createUser(actor: Actor, f: UserFields): Promise<ScimUserRow> {
    let id: number;
    try {
      id = await this.ctx.prisma.$transaction(async (tx) => {
        const u = await tx.user.create({
          data: { name: f.name, displayName: f.displayName, email: f.email, scimExternalId: f.externalId, scimData: f.data as Prisma.InputJsonValue },
        });
        await audit(tx, actor, 'user.create', `user:${u.name}`, { by: 'scim', externalId: f.externalId });
        return u.id;
      }, TX_OPTIONS);
    } catch (err) {
      // User names are lower case, so this is the case-insensitive uniqueness SCIM clients expect.
      if (isUniqueViolation(err)) throw uniqueness(`userName "${f.name}" is taken (compared case-insensitively; an offboarded user keeps their name)`);
      throw err;
    }
    if (f.active === false) await this.users.suspend(actor, id);
    return this.getUser(id);
  }

  /** PUT, and PATCH once applied: the stored fields become `f`; `active` suspends or resumes. */
  async replaceUser(actor: Actor, id: number, f: UserFields): Promise<ScimUserRow> {
    const before = await this.getUser(id);
    if (f.name !== before.name) throw new ScimError(400, `userName cannot change in Weft (it is "${before.name}", the request makes it "${f.name}"): policy and devices name users by it`, 'mutability');
    await this.ctx.prisma.$transaction(async (tx) => {
      const locked = await lockScimUser(tx, id);
      const old = { displayName: locked.displayName, email: locked.email, externalId: locked.scimExternalId, data: locked.scimData ?? {} };
      const next = { displayName: f.displayName, email: f.email, externalId: f.externalId, data: f.data };
      if (JSON.stringify(old) === JSON.stringify(next)) return;
      await tx.user.update({ where: { id }, data: { displayName: f.displayName, email: f.email, scimExternalId: f.externalId, scimData: f.data as Prisma.InputJsonValue } });
      const changed = (Object.keys(next) as (keyof typeof next)[]).filter((k) => JSON.stringify(old[k]) !== JSON.stringify(next[k]));
      await audit(tx, actor, 'user.update', `user:${locked.name}`, { by: 'scim', changed }, {
        before: Object.fromEntries(changed.map((k) => [k, old[k]])),
        after: Object.fromEntries(changed.map((k) => [k, next[k]])),
      });
    }, TX_OPTIONS);
    const active = before.suspendedAt === null;
    if (active && f.active === false) await this.users.suspend(actor, id);
    if (!active && f.active === true) await this.users.resume(actor, id);
    return this.getUser(id);
  }

  /** DELETE: offboards the user (devices deleted, keys revoked, sessions ended); SCIM sees them no more. */
  async deleteUser(actor: Actor, id: number): Promise<void> {
    await this.getUser(id);
    await this.users.offboard(actor, id);
  }

  // ---- groups ----

  async getGroup(id: number): Promise<ScimGroupRow> {
    const g = await this.ctx.prisma.scimGroup.findUnique({ where: { id }, include: groupInclude });
    if (!g) throw notFound(`no group with id "${id}"`);
    return g;
  }

  async listGroups(where: Constraint[], startIndex: number, count: number): Promise<Page<ScimGroupRow>> {
    const w: Prisma.ScimGroupWhereInput = { AND: where.map(groupConstraint) };
    const [total, rows] = await Promise.all([
      this.ctx.prisma.scimGroup.count({ where: w }),
      count === 0 ? [] : this.ctx.prisma.scimGroup.findMany({ where: w, include: groupInclude, orderBy: { id: 'asc' }, skip: startIndex - 1, take: count }),
    ]);
    return { total, rows };
  }

  async createGroup(actor: Actor, f: GroupFields): Promise<ScimGroupRow> {
    const id = await this.groupWrite(async (tx) => {
      await checkMembers(tx, f.memberIds);
      const g = await tx.scimGroup.create({ data: { displayName: f.displayName, displayKey: f.displayName.toLowerCase(), externalId: f.externalId } });
      if (f.memberIds.length) await tx.scimGroupMember.createMany({ data: f.memberIds.map((userId) => ({ groupId: g.id, userId })) });
      await audit(tx, actor, 'group.create', `group:${g.displayName}`, { by: 'scim', id: g.id, externalId: f.externalId, members: await memberNames(tx, f.memberIds) });
      await this.recordPolicyInputs(tx);
      return { id: g.id, changed: true };
    }, f.displayName);
    return this.getGroup(id);
  }

  /** PUT, and PATCH once applied: name, externalId and the member list become `f`'s. */
  async replaceGroup(actor: Actor, id: number, f: GroupFields): Promise<ScimGroupRow> {
    await this.groupWrite(async (tx) => {
      await tx.$queryRaw`SELECT id FROM scim_groups WHERE id = ${id} FOR UPDATE`;
      const before = await tx.scimGroup.findUnique({ where: { id }, include: { members: { select: { userId: true } } } });
      if (!before) throw notFound(`no group with id "${id}"`);
      await checkMembers(tx, f.memberIds);
      const had = before.members.map((m) => m.userId);
      const added = f.memberIds.filter((u) => !had.includes(u));
      const removed = had.filter((u) => !f.memberIds.includes(u));
      const renamed = before.displayName !== f.displayName;
      if (!renamed && before.externalId === f.externalId && !added.length && !removed.length) return { id, changed: false };
      await tx.scimGroup.update({ where: { id }, data: { displayName: f.displayName, displayKey: f.displayName.toLowerCase(), externalId: f.externalId } });
      if (removed.length) await tx.scimGroupMember.deleteMany({ where: { groupId: id, userId: { in: removed } } });
      if (added.length) await tx.scimGroupMember.createMany({ data: added.map((userId) => ({ groupId: id, userId })) });
      await audit(tx, actor, 'group.update', `group:${f.displayName}`, { by: 'scim', id, added: await memberNames(tx, added), removed: await memberNames(tx, removed) }, {
        before: { displayName: before.displayName, externalId: before.externalId },
        after: { displayName: f.displayName, externalId: f.externalId },
      });
      if (renamed || added.length || removed.length) await this.recordPolicyInputs(tx);
      return { id, changed: renamed || added.length > 0 || removed.length > 0 };
    }, f.displayName);
    return this.getGroup(id);
  }

  async deleteGroup(actor: Actor, id: number): Promise<void> {
    await this.groupWrite(async (tx) => {
      const g = await tx.scimGroup.findUnique({ where: { id }, include: { members: { select: { userId: true } } } });
      if (!g) throw notFound(`no group with id "${id}"`);
      await tx.scimGroup.delete({ where: { id } });
      await audit(tx, actor, 'group.delete', `group:${g.displayName}`, { by: 'scim', id, members: await memberNames(tx, g.members.map((m) => m.userId)) });
      await this.recordPolicyInputs(tx);
      return { id, changed: true };
    }, '');
  }

  /** Group memberships are policy inputs: the mapper reloads the policy (the version in force stays). Last statement of the transaction. */
  private async recordPolicyInputs(tx: Tx): Promise<void> {
    const newest = await tx.policyVersion.findFirst({ orderBy: { version: 'desc' }, select: { version: true } });
    await this.ctx.record(tx, { kind: 'policy-changed', version: newest?.version ?? 0 });
  }

  /** Runs a group write; after a commit that changed membership or names, tells this replica's mapper. */
  private async groupWrite(fn: (tx: Tx) => Promise<{ id: number; changed: boolean }>, displayName: string): Promise<number> {
    let r: { id: number; changed: boolean };
    try {
      r = await this.ctx.prisma.$transaction(fn, TX_OPTIONS);
    } catch (err) {
      if (isUniqueViolation(err)) throw uniqueness(`a group named "${displayName}" exists (compared case-insensitively)`);
      throw err;
    }
    if (r.changed) {
      const newest = await this.ctx.prisma.policyVersion.findFirst({ orderBy: { version: 'desc' }, select: { version: true } });
      this.ctx.emit({ kind: 'policy-changed', version: newest?.version ?? 0 });
    }
    return r.id;
  }
}

function userConstraint(c: Constraint): Prisma.UserWhereInput {
  if (c.attr === 'userName') return { name: c.value.toLowerCase() };
  if (c.attr === 'externalId') return { scimExternalId: c.value };
  if (c.attr === 'displayName') return { displayName: { equals: c.value, mode: 'insensitive' } };
  if (c.attr === 'id') return /^[1-9]\d{0,9}$/.test(c.value) && Number(c.value) <= 2 ** 31 - 1 ? { id: Number(c.value) } : { id: -1 };
  throw invalidValue(`cannot filter users on ${c.attr}`);
}

function groupConstraint(c: Constraint): Prisma.ScimGroupWhereInput {
  if (c.attr === 'displayName') return { displayKey: c.value.toLowerCase() };
  if (c.attr === 'externalId') return { externalId: c.value };
  if (c.attr === 'id') return /^[1-9]\d{0,9}$/.test(c.value) && Number(c.value) <= 2 ** 31 - 1 ? { id: Number(c.value) } : { id: -1 };
  throw invalidValue(`cannot filter groups on ${c.attr}`);
}

async function lockScimUser(tx: Tx, id: number) {
  await tx.$queryRaw`SELECT id FROM users WHERE id = ${id} FOR UPDATE`;
  const u = await tx.user.findUnique({ where: { id } });
  if (!u || u.offboardedAt) throw notFound(`no user with id "${id}"`);
  return u;
}

/** Every member must be a user SCIM can see (not offboarded); the first that is not is named. */
async function checkMembers(tx: Tx, ids: number[]): Promise<void> {
  if (!ids.length) return;
  const found = new Set((await tx.user.findMany({ where: { id: { in: ids }, offboardedAt: null }, select: { id: true } })).map((u) => u.id));
  const missing = ids.find((id) => !found.has(id));
  if (missing !== undefined) throw invalidValue(`members: no user with id "${missing}"`);
}

async function memberNames(tx: Tx, ids: number[]): Promise<string[]> {
  if (!ids.length) return [];
  return (await tx.user.findMany({ where: { id: { in: ids } }, select: { name: true }, orderBy: { id: 'asc' } })).map((u) => u.name);
}
