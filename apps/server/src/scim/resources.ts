/**
 * The SCIM User and Group resources (RFC 7643) as Weft holds them, and how a document a client
 * sent (POST, PUT, or the result of a PATCH) becomes the fields Weft stores. Validation refuses
 * with invalidValue naming the attribute; unknown attributes are kept as sent (clients map many
 * attributes Weft has no use for, and must get them back), within a size limit.
 */
import { invalidValue } from './errors.js';
import type { Doc, PatchSchema } from './patch.js';

export const USER_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:User';
export const GROUP_SCHEMA = 'urn:ietf:params:scim:schemas:core:2.0:Group';
export const ENTERPRISE_USER_SCHEMA = 'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User';
export const LIST_SCHEMA = 'urn:ietf:params:scim:api:messages:2.0:ListResponse';

/** Bytes the kept attributes of one user may take (JSON). */
export const MAX_SCIM_DATA_BYTES = 16 * 1024;
/** A user name as Weft takes it (protocol UserName), after lower-casing what the client sent. */
const USER_NAME = /^[a-z0-9][a-z0-9._@-]{0,63}$/;
const MULTI = ['emails', 'phoneNumbers', 'ims', 'photos', 'addresses', 'groups', 'entitlements', 'roles', 'x509Certificates', 'members'];

export const USER_PATCH_SCHEMA: PatchSchema = {
  coreUrn: USER_SCHEMA,
  extensionUrns: [ENTERPRISE_USER_SCHEMA],
  names: ['userName', 'externalId', 'displayName', 'active', 'name', 'givenName', 'familyName', 'middleName', 'formatted', 'honorificPrefix', 'honorificSuffix',
    'nickName', 'title', 'preferredLanguage', 'locale', 'timezone', 'userType', 'profileUrl', 'emails', 'value', 'type', 'primary', 'display', ...MULTI],
  multi: MULTI,
  readOnly: ['id', 'meta', 'groups'],
};

export const GROUP_PATCH_SCHEMA: PatchSchema = {
  coreUrn: GROUP_SCHEMA,
  extensionUrns: [],
  names: ['displayName', 'externalId', 'members', 'value', 'display', 'type'],
  multi: ['members'],
  readOnly: ['id', 'meta'],
};

/** What Weft stores of a SCIM user. */
export interface UserFields {
  name: string;
  externalId: string | null;
  displayName: string | null;
  email: string | null;
  /** Absent: a new user is active, an existing one keeps its state (a PUT without `active` resumes no one). */
  active: boolean | undefined;
  /** Everything else, kept as sent (name, emails, title, extensions...). */
  data: Doc;
}

export interface GroupFields {
  displayName: string;
  externalId: string | null;
  /** Member user ids, as the client named them (SCIM ids are Weft's user ids in decimal). */
  memberIds: number[];
}

const take = (doc: Doc, name: string): unknown => {
  const k = Object.keys(doc).find((x) => x.toLowerCase() === name.toLowerCase());
  if (k === undefined) return undefined;
  const v = doc[k];
  delete doc[k];
  return v;
};

function optionalString(v: unknown, attr: string, max: number): string | null {
  if (v === undefined || v === null || v === '') return null;
  if (typeof v !== 'string') throw invalidValue(`"${attr}" must be a string, not ${JSON.stringify(v)}`);
  if (v.length > max || v.includes('\0')) throw invalidValue(`"${attr}" must be at most ${max} characters, without NUL`);
  return v;
}

/** A SCIM boolean: true/false, or the strings "True"/"False" in any case (Entra ID sends those). */
export function scimBoolean(v: unknown, attr: string): boolean {
  if (typeof v === 'boolean') return v;
  if (typeof v === 'string' && /^(true|false)$/i.test(v)) return v.toLowerCase() === 'true';
  throw invalidValue(`"${attr}" must be true or false, not ${JSON.stringify(v)}`);
}

/** A user document (POST / PUT body, or after PATCH) as the fields Weft stores. */
export function userFields(input: unknown): UserFields {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw invalidValue('the body must be a User object');
  const doc = structuredClone(input) as Doc;
  for (const k of ['schemas', 'id', 'meta', 'groups']) take(doc, k);
  const userName = take(doc, 'userName');
  if (typeof userName !== 'string' || userName === '') throw invalidValue('"userName" is required and must be a string');
  const name = userName.toLowerCase();
  if (!USER_NAME.test(name)) throw invalidValue(`"userName" ${JSON.stringify(userName)} cannot be a Weft user name: it must be 1-64 of a-z 0-9 . _ @ - (compared case-insensitively), starting with a letter or digit`);
  const externalId = optionalString(take(doc, 'externalId'), 'externalId', 256);
  const displayName = optionalString(take(doc, 'displayName'), 'displayName', 128);
  const activeRaw = take(doc, 'active');
  const active = activeRaw === undefined || activeRaw === null ? undefined : scimBoolean(activeRaw, 'active');
  const nameKey = Object.keys(doc).find((k) => k.toLowerCase() === 'name');
  if (nameKey !== undefined && doc[nameKey] !== null) {
    const n = doc[nameKey];
    if (typeof n !== 'object' || Array.isArray(n)) throw invalidValue('"name" must be an object (givenName, familyName, formatted...)');
    for (const [k, v] of Object.entries(n as Doc)) optionalString(v, `name.${k}`, 256);
  }
  let email: string | null = null;
  const emailsKey = Object.keys(doc).find((k) => k.toLowerCase() === 'emails');
  if (emailsKey !== undefined && doc[emailsKey] !== null) {
    const emails = doc[emailsKey];
    if (!Array.isArray(emails)) throw invalidValue('"emails" must be an array of { value, type, primary }');
    emails.forEach((e, i) => {
      if (e === null || typeof e !== 'object' || Array.isArray(e)) throw invalidValue(`emails[${i}] must be an object with "value"`);
      const el = e as Doc;
      const value = optionalString(el.value, `emails[${i}].value`, 254);
      if (value !== null && !/^[^\s@]+@[^\s@]+$/.test(value)) throw invalidValue(`emails[${i}].value ${JSON.stringify(value)} is not an email address`);
      const pk = Object.keys(el).find((k) => k.toLowerCase() === 'primary');
      if (pk !== undefined) el[pk] = scimBoolean(el[pk], `emails[${i}].primary`);
    });
    const withValue = (emails as Doc[]).filter((e) => typeof e.value === 'string' && e.value !== '');
    email = ((withValue.find((e) => Object.entries(e).some(([k, v]) => k.toLowerCase() === 'primary' && v === true)) ?? withValue[0])?.value as string | undefined) ?? null;
  }
  if (Buffer.byteLength(JSON.stringify(doc)) > MAX_SCIM_DATA_BYTES) throw invalidValue(`the user's other attributes take more than ${MAX_SCIM_DATA_BYTES} bytes`);
  return { name, externalId, displayName, email, active, data: doc };
}

/** A group document (POST / PUT body, or after PATCH) as the fields Weft stores. */
export function groupFields(input: unknown): GroupFields {
  if (input === null || typeof input !== 'object' || Array.isArray(input)) throw invalidValue('the body must be a Group object');
  const doc = input as Doc;
  const get = (name: string) => doc[Object.keys(doc).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name];
  const displayName = get('displayName');
  if (typeof displayName !== 'string' || displayName.trim() === '') throw invalidValue('"displayName" is required and must be a non-empty string');
  if (displayName.length > 128 || displayName.includes('\0')) throw invalidValue('"displayName" must be at most 128 characters, without NUL');
  const externalId = optionalString(get('externalId'), 'externalId', 256);
  const members = get('members');
  const memberIds: number[] = [];
  if (members !== undefined && members !== null) {
    if (!Array.isArray(members)) throw invalidValue('"members" must be an array of { value }');
    members.forEach((m, i) => {
      const value = m !== null && typeof m === 'object' ? (m as Doc)[Object.keys(m).find((k) => k.toLowerCase() === 'value') ?? 'value'] : undefined;
      if (typeof value !== 'string' || !/^[1-9]\d{0,9}$/.test(value) || Number(value) > 2 ** 31 - 1) throw invalidValue(`members[${i}].value must be the id of a user (a decimal string), not ${JSON.stringify(value)}`);
      if (!memberIds.includes(Number(value))) memberIds.push(Number(value));
    });
  }
  return { displayName, externalId, memberIds };
}

/** The policy group a SCIM group's members are in: `group:` and its displayName, other characters than A-Z a-z 0-9 . _ - as "-". */
export function policyGroupName(displayName: string): string {
  const cleaned = displayName.trim().replace(/[^A-Za-z0-9._-]+/g, '-').replace(/^[^A-Za-z0-9]+/, '');
  return `group:${cleaned || 'unnamed'}`;
}
