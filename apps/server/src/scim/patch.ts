/**
 * SCIM PATCH (RFC 7644 3.5.2) on a resource held as plain JSON, with the habits of the common
 * provisioning clients accepted as they are sent:
 * - `op` in any case (`Replace`, `Add`, `Remove`: Entra ID);
 * - add / replace with no path and an object value, whose keys may be dotted (`name.givenName`)
 *   or carry a schema URN (`urn:...:enterprise:2.0:User:department`);
 * - value-filtered paths (`emails[type eq "work"].value`, `members[value eq "42"]`); an add or
 *   replace through an `eq` filter that matches nothing creates the element (how Entra ID sets a
 *   first work email);
 * - member removal as `remove` of `members` with a value array (`[{ "value": "42" }]`).
 * Strings such as "True" stay strings here; the resource's validator (resources.ts) coerces the
 * attributes it knows to be boolean. The document is changed on a copy: a refused operation
 * leaves the caller's resource as it was.
 */
import { invalidPath, invalidSyntax, invalidValue, ScimError } from './errors.js';
import { matches, parseFilter, type Filter } from './filter.js';

export type Doc = Record<string, unknown>;

export interface PatchSchema {
  /** The core schema URN; a path or key prefixed with it means the bare attribute. */
  coreUrn: string;
  /** Extension URNs kept as an object under their URN (a path prefixed with one goes there). */
  extensionUrns: readonly string[];
  /** Canonical spellings of known attributes (top level and sub-attributes), matched case-insensitively. */
  names: readonly string[];
  /** Attributes that are multi-valued (arrays). */
  multi: readonly string[];
  /** Read-only attributes: an operation on them is refused (mutability). */
  readOnly: readonly string[];
}

export interface PatchOperation { op: string; path?: string; value?: unknown }

/** Most operations one PATCH may carry. */
export const MAX_PATCH_OPERATIONS = 1000;
const PATCH_SCHEMA_URN = 'urn:ietf:params:scim:api:messages:2.0:PatchOp';

interface Target { container: 'root' | string; attr: string; filter?: Filter; sub?: string }

/** The operations of a PatchOp body, or invalidSyntax naming what is wrong with its shape. */
export function patchOperations(body: unknown): PatchOperation[] {
  if (body === null || typeof body !== 'object' || Array.isArray(body)) throw invalidSyntax('the body must be a PatchOp object with "Operations"');
  const b = body as Doc;
  const schemas = b.schemas;
  if (schemas !== undefined && (!Array.isArray(schemas) || !schemas.some((s) => typeof s === 'string' && s.toLowerCase() === PATCH_SCHEMA_URN.toLowerCase()))) {
    throw invalidSyntax(`"schemas" must contain "${PATCH_SCHEMA_URN}"`);
  }
  const key = Object.keys(b).find((k) => k.toLowerCase() === 'operations');
  const ops = key === undefined ? undefined : b[key];
  if (!Array.isArray(ops) || ops.length === 0) throw invalidSyntax('"Operations" must be a non-empty array');
  if (ops.length > MAX_PATCH_OPERATIONS) throw new ScimError(400, `"Operations" holds ${ops.length} operations; at most ${MAX_PATCH_OPERATIONS}`, 'tooMany');
  return ops.map((o, i) => {
    if (o === null || typeof o !== 'object' || Array.isArray(o)) throw invalidSyntax(`Operations[${i}] must be an object`);
    const get = (name: string) => (o as Doc)[Object.keys(o).find((k) => k.toLowerCase() === name) ?? name];
    const op = get('op');
    const path = get('path');
    if (typeof op !== 'string') throw invalidSyntax(`Operations[${i}].op must be "add", "remove" or "replace"`);
    if (path !== undefined && typeof path !== 'string') throw invalidPath(`Operations[${i}].path must be a string`);
    return { op, ...(path !== undefined && path !== '' ? { path } : {}), value: get('value') };
  });
}

/** Applies `ops` to a copy of `doc` and returns the copy; throws ScimError (nothing applied) on the first bad operation. */
export function applyPatch(doc: Doc, ops: PatchOperation[], schema: PatchSchema): Doc {
  const out = structuredClone(doc);
  ops.forEach((o, i) => {
    const op = o.op.toLowerCase();
    if (op !== 'add' && op !== 'remove' && op !== 'replace') throw invalidSyntax(`Operations[${i}].op is "${o.op}"; it must be add, remove or replace (in any case)`);
    try {
      if (o.path === undefined) {
        if (op === 'remove') throw new ScimError(400, 'remove needs a "path"', 'noTarget');
        if (o.value === null || typeof o.value !== 'object' || Array.isArray(o.value)) throw invalidValue(`${op} with no path needs an object value (attribute names to values)`);
        for (const [key, value] of Object.entries(o.value as Doc)) {
          if (key.toLowerCase() === 'schemas' || key.toLowerCase() === 'meta' || key.toLowerCase() === 'id') continue;
          const ext = schema.extensionUrns.find((u) => u.toLowerCase() === key.toLowerCase());
          if (ext && value !== null && typeof value === 'object' && !Array.isArray(value)) {
            for (const [k, v] of Object.entries(value as Doc)) apply(out, op, { ...parsePath(k, schema), container: ext }, v, schema);
          } else {
            apply(out, op, parsePath(key, schema), value, schema);
          }
        }
      } else {
        apply(out, op, parsePath(o.path, schema), o.value, schema);
      }
    } catch (err) {
      if (err instanceof ScimError) throw new ScimError(err.status, `Operations[${i}] (${o.op}${o.path !== undefined ? ` ${o.path}` : ''}): ${err.message}`, err.scimType);
      throw err;
    }
  });
  return out;
}

/** `attr`, `attr.sub`, `attr[filter]`, `attr[filter].sub`, each optionally prefixed with a schema URN. */
export function parsePath(path: string, schema: PatchSchema): Target {
  let container: Target['container'] = 'root';
  let rest = path;
  const lower = path.toLowerCase();
  if (lower.startsWith('urn:')) {
    const known = [schema.coreUrn, ...schema.extensionUrns].find((u) => lower.startsWith(`${u.toLowerCase()}:`));
    if (!known) throw invalidPath(`"${path}" names a schema this resource does not have (${[schema.coreUrn, ...schema.extensionUrns].join(', ')})`);
    rest = path.slice(known.length + 1);
    if (known !== schema.coreUrn) container = known;
  }
  const m = /^([A-Za-z$][\w$-]*)(?:\.([A-Za-z$][\w$-]*))?(?:\[(.+)\])?(?:\.([A-Za-z$][\w$-]*))?$/.exec(rest);
  if (!m || (m[2] && (m[3] || m[4]))) throw invalidPath(`"${path}" is not an attribute path (attr, attr.sub, attr[filter] or attr[filter].sub)`);
  const attr = canonical(m[1]!, schema);
  if (schema.readOnly.some((r) => r.toLowerCase() === attr.toLowerCase())) throw new ScimError(400, `"${attr}" is read-only`, 'mutability');
  const target: Target = { container, attr };
  if (m[3]) {
    try {
      target.filter = parseFilter(m[3]);
    } catch (err) {
      if (err instanceof ScimError) throw invalidPath(`the filter in "${path}": ${err.message}`);
      throw err;
    }
  }
  const sub = m[2] ?? m[4];
  if (sub) target.sub = canonical(sub, schema);
  return target;
}

const canonical = (name: string, schema: PatchSchema) => schema.names.find((n) => n.toLowerCase() === name.toLowerCase()) ?? name;
const isObject = (v: unknown): v is Doc => v !== null && typeof v === 'object' && !Array.isArray(v);

/** The key `name` has in `obj` (compared case-insensitively), or `name` if absent. */
function keyIn(obj: Doc, name: string): string {
  return Object.keys(obj).find((k) => k.toLowerCase() === name.toLowerCase()) ?? name;
}

function containerOf(doc: Doc, t: Target, create: boolean): Doc | undefined {
  if (t.container === 'root') return doc;
  const k = keyIn(doc, t.container);
  if (!isObject(doc[k])) {
    if (!create) return undefined;
    doc[k] = {};
  }
  return doc[k] as Doc;
}

/** The `eq` pairs of a filter made only of `eq` joined by `and`, else null: what a new element gets. */
function eqPairs(f: Filter): [string, unknown][] | null {
  if (f.op === 'eq') return f.attr.includes('.') ? null : [[f.attr, f.value]];
  if (f.op === 'and') {
    const l = eqPairs(f.left);
    const r = eqPairs(f.right);
    return l && r ? [...l, ...r] : null;
  }
  return null;
}

const sameElement = (a: unknown, b: unknown) => {
  if (isObject(a) && isObject(b) && 'value' in a && 'value' in b) return String(a.value).toLowerCase() === String(b.value).toLowerCase();
  return JSON.stringify(a) === JSON.stringify(b);
};

function apply(doc: Doc, op: 'add' | 'remove' | 'replace', t: Target, value: unknown, schema: PatchSchema): void {
  const isMulti = (existing: unknown) => schema.multi.some((m) => m.toLowerCase() === t.attr.toLowerCase()) || Array.isArray(existing);
  const c = containerOf(doc, t, op !== 'remove');
  if (!c) return;
  const key = keyIn(c, t.attr);
  const existing = c[key];
  if (op !== 'remove' && value === undefined) throw invalidValue(`${op} needs a "value"`);

  if (t.filter) {
    if (!isMulti(existing)) throw invalidPath(`"${t.attr}" is not multi-valued, so it cannot take a filter`);
    const list = Array.isArray(existing) ? existing : [];
    const hit = list.filter((el) => matches(t.filter!, el));
    if (op === 'remove') {
      if (t.sub) for (const el of hit) if (isObject(el)) delete el[keyIn(el, t.sub)];
      c[key] = t.sub ? list : list.filter((el) => !hit.includes(el));
      return;
    }
    if (hit.length === 0) {
      const pairs = eqPairs(t.filter);
      if (!pairs) throw new ScimError(400, `no value of "${t.attr}" matches the filter, and only an "eq" filter says what a new one would be`, 'noTarget');
      const el: Doc = Object.fromEntries(pairs.map(([k, v]) => [canonical(k, schema), v]));
      if (t.sub) el[t.sub] = value;
      else if (isObject(value)) Object.assign(el, value);
      else throw invalidValue(`"${t.attr}[...]" needs an object value`);
      c[key] = [...list, el];
      return;
    }
    for (const el of hit) {
      if (!isObject(el)) continue;
      if (t.sub) el[keyIn(el, t.sub)] = value;
      else if (isObject(value)) for (const [k, v] of Object.entries(value)) el[keyIn(el, k)] = v;
      else throw invalidValue(`"${t.attr}[...]" needs an object value`);
    }
    return;
  }

  if (t.sub) {
    if (isMulti(existing)) {
      // `emails.value` and the like: every element.
      for (const el of Array.isArray(existing) ? existing : []) {
        if (!isObject(el)) continue;
        if (op === 'remove') delete el[keyIn(el, t.sub)];
        else el[keyIn(el, t.sub)] = value;
      }
      return;
    }
    if (op === 'remove') {
      if (isObject(existing)) delete existing[keyIn(existing, t.sub)];
      return;
    }
    if (!isObject(existing)) c[key] = {};
    const obj = c[key] as Doc;
    obj[keyIn(obj, t.sub)] = value;
    return;
  }

  if (op === 'remove') {
    if (isMulti(existing) && value !== undefined && value !== null) {
      const gone = Array.isArray(value) ? value : [value];
      c[key] = (Array.isArray(existing) ? existing : []).filter((el) => !gone.some((g) => sameElement(el, g)));
      return;
    }
    delete c[key];
    return;
  }
  if (isMulti(existing)) {
    const values = Array.isArray(value) ? value : [value];
    if (op === 'replace') {
      c[key] = values;
      return;
    }
    const list = Array.isArray(existing) ? [...existing] : [];
    for (const v of values) if (!list.some((el) => sameElement(el, v))) list.push(v);
    c[key] = list;
    return;
  }
  if (isObject(existing) && isObject(value)) {
    // A complex attribute: the sub-attributes given replace or add; the others stay (3.5.2.1, 3.5.2.3).
    for (const [k, v] of Object.entries(value)) existing[keyIn(existing, canonical(k, schema))] = v;
    return;
  }
  c[key] = value;
}
