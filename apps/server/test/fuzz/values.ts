/**
 * Inputs for the fuzz tier: valid values generated from a JSON Schema (the OpenAPI document's,
 * or `z.toJSONSchema` of a wire type), hostile values, and mutations of a valid input.
 */
import { isIPv4, isIPv6 } from 'node:net';
import type { Rng } from './prng.js';

export interface Schema {
  type?: string | string[];
  properties?: Record<string, Schema>;
  required?: string[];
  additionalProperties?: boolean | Schema;
  items?: Schema;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: boolean | number;
  exclusiveMaximum?: boolean | number;
  enum?: unknown[];
  const?: unknown;
  anyOf?: Schema[];
  oneOf?: Schema[];
  default?: unknown;
}

/** Values seen in earlier 2xx replies (names, ids, codes, secrets), by field name: they get deeper. */
export type Pools = Map<string, unknown[]>;

export function remember(pools: Pools, key: string, value: unknown): void {
  const list = pools.get(key) ?? [];
  if (!list.includes(value)) list.push(value);
  if (list.length > 50) list.shift();
  pools.set(key, list);
}

/**
 * The fuzzer's own idea of a valid endpoint, independent of the server's schema: a dotted quad of
 * octets 0-255 or a bracketed IPv6 address without a zone, and a port 1-65535.
 */
export function isValidEndpoint(text: string): boolean {
  const m = /^(?:\[([^\]]+)\]|([0-9.]+)):(\d{1,5})$/.exec(text);
  if (!m) return false;
  const port = Number(m[3]);
  if (port < 1 || port > 65535 || String(port) !== m[3]) return false;
  // A zone ("%eth0") names an interface on the sender's host: meaningless to its peers.
  return m[1] !== undefined ? isIPv6(m[1]) && !m[1].includes('%') : isIPv4(m[2]!);
}

function validEndpoint(rng: Rng): string {
  const port = rng.pick([1, 443, 41641, 51820, 65535, rng.int(1, 65535)]);
  if (rng.chance(0.6)) return `${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(0, 255)}.${rng.int(0, 255)}:${port}`;
  return `[${rng.pick(['::1', 'fd7a:115c:a1e0::1', '2001:db8::' + rng.hex(4), '::ffff:192.0.2.1', 'fe80::1'])}]:${port}`;
}

/** Candidate makers for pattern-constrained strings; the first whose output matches wins. */
const FORMS: ((rng: Rng) => string)[] = [
  (rng) => 'nodekey:' + rng.hex(64),
  (rng) => 'mkey:' + rng.hex(64),
  (rng) => 'tag:' + rng.word(rng.int(1, 10)),
  validEndpoint,
  (rng) => `${rng.word(6, 'abcdefghijklmnopqrstuvwxyz')}@example.com`,
  (rng) => 'fz' + rng.word(rng.int(1, 10)),
  (rng) => rng.pick(['Laptop ', 'ci runner ', 'Zoë’s Mac ', 'router-']) + rng.word(4),
];

export function validValue(rng: Rng, schema: Schema, pools: Pools, key = ''): unknown {
  const pool = pools.get(key);
  if (pool?.length && rng.chance(0.6)) return rng.pick(pool);
  if (schema.anyOf ?? schema.oneOf) return validValue(rng, rng.pick((schema.anyOf ?? schema.oneOf)!), pools, key);
  if (schema.const !== undefined) return schema.const;
  if (schema.enum) return rng.pick(schema.enum);
  const type = Array.isArray(schema.type) ? schema.type[0] : schema.type;
  switch (type) {
    case 'boolean':
      return rng.chance(0.5);
    case 'integer':
    case 'number': {
      const lo = (schema.minimum ?? 0) + (schema.exclusiveMinimum === true ? 1 : 0);
      const hi = Math.min(schema.maximum ?? 1000, lo + 1000);
      return rng.int(lo, hi);
    }
    case 'array': {
      const n = rng.int(schema.minItems ?? 0, Math.min(schema.maxItems ?? 3, 3));
      const out: unknown[] = [];
      for (let i = 0; i < n * 3 && out.length < n; i++) {
        const v = validValue(rng, schema.items ?? {}, pools, key);
        if (!out.includes(v)) out.push(v);
      }
      return out;
    }
    case 'object': {
      const out: Record<string, unknown> = {};
      for (const [k, s] of Object.entries(schema.properties ?? {})) {
        if (schema.required?.includes(k) || rng.chance(0.5)) out[k] = validValue(rng, s, pools, k);
      }
      return out;
    }
    case 'string':
      return validString(rng, schema);
    default:
      return {};
  }
}

function validString(rng: Rng, schema: Schema): string {
  const min = schema.minLength ?? 1;
  const max = schema.maxLength ?? 64;
  const fits = (s: string) => s.length >= min && s.length <= max && (!schema.pattern || new RegExp(schema.pattern, 'u').test(s));
  for (const form of FORMS) {
    const s = form(rng);
    if (fits(s)) return s;
  }
  return rng.word(Math.max(min, Math.min(max, 8)));
}

const BIG = 2 ** 31;
/** Numbers at the edges: 0, -1, int32 and int53 limits, fractions, huge. */
export const BOUNDARY_NUMBERS: number[] = [0, -1, 1, -0, 0.5, 1.5, BIG - 1, BIG, 2 ** 32, 2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, -(2 ** 53), 1e308, -1e308, Number.MIN_VALUE];
/** Strings that some parser may turn into a number, or into nothing. */
export const NUMERIC_STRINGS = ['NaN', 'Infinity', '-Infinity', '1e309', '0x10', '0b1', '0o7', ' 1', '1 ', '1.0', '1e0', '+1', '-0', '٣', '１', '', '2147483648', '9007199254740993', '00000000001'];
/** Unicode and control characters: NUL, escapes, bidi overrides, lone surrogates, zero-width. */
export const NASTY_CHARS = ['\u0000', '\u0001', '\u0007', '\u001b]0;pwned\u0007', '\u001b[2J', '\n', '\r\n', '\t', '\u007f', '\u0085', '\u2028', '\u202e', '\u200b', '\ufeff', '\ud800', '\udfff', '😀', 'e\u0301', 'ﷺ', '\uffff', '%00', '%n%s', '${7*7}', '{{7*7}}', "' OR 1=1 --", '"; DROP TABLE users; --', '../../etc/passwd', '<script>alert(1)</script>', '\\'];
/** Things that look like addresses, endpoints and keys but are not. */
export const BAD_LOOKALIKES = [
  '999.999.999.999:99999', '1.2.3.4:0', '1.2.3.4:65536', '256.0.0.1:1', '01.2.3.4:80', '1.2.3:4', '1.2.3.4', '[::1]:65536', '[::1]:0', '[:::]:1', '[1.2.3.4]:5', '[fe80::1%eth0]:1', ':80', '1.2.3.4:80:80', 'localhost:80',
  'nodekey:' + 'a'.repeat(63), 'nodekey:' + 'A'.repeat(64), 'nodekey:' + 'g'.repeat(64), 'nodekey:' + 'a'.repeat(65), 'mkey:' + 'a'.repeat(64), 'nodekey:', 'privkey:' + 'a'.repeat(64),
  'tag:', 'tag:-x', 'tag:1x', 'tag:web_1', 'tag:wéb', 'weft-auth-000000000000-' + 'A'.repeat(32), 'weft-api-000000000000-' + 'A'.repeat(32),
  '100.64.0.1', 'fd00::/8', '0.0.0.0/0',
];
/** The characters most likely to break a store or a terminal: tried half the time. */
const WORST_CHARS = ['\u0000', '\u001b]0;pwned\u0007', '\ud800', '\u202e'];
const nastyChar = (rng: Rng) => rng.pick(rng.chance(0.5) ? WORST_CHARS : NASTY_CHARS);

/** Property names that should never be accepted or trusted. */
export const EXTRA_KEYS = ['__proto__', 'constructor', 'prototype', 'admin', 'id', 'userId', 'scopes', 'isAdmin', 'role', '', ' ', '\u0000', 'ÿ', '😀'];

/** A near miss of a valid endpoint, key or tag: the same shape, one part out of range. */
export function lookalike(rng: Rng, near: string): string | null {
  const ep = /^(\[?)([^\]]+?)(\]?):(\d+)$/.exec(near);
  if (ep && isValidEndpoint(near)) {
    const [, open, host, close, port] = ep;
    const octets = host!.split('.');
    const which = rng.int(0, 3);
    return rng.pick([
      `${open}${host}${close}:${rng.pick(['0', '65536', '99999', '00080', '-1', ''])}`,
      octets.length === 4 ? `${octets.map((o, i) => (i === which ? rng.pick(['256', '999', '-1', '01', '']) : o)).join('.')}:${port}` : `[${host}%eth0]:${port}`,
      octets.length === 4 ? `[${host}]:${port}` : `${host}:${port}`,
      '999.999.999.999:99999',
      `${host}:${port}`.replace(/\d/, '٣'),
    ]);
  }
  if (/^nodekey:|^mkey:/.test(near)) return rng.pick([near.slice(0, -1), near + 'a', near.toUpperCase(), near.replace(/[0-9a-f]$/, 'g'), near.replace(/^\w+:/, 'privkey:'), near.replace(/^nodekey:/, 'mkey:')]);
  if (near.startsWith('tag:')) return rng.pick(['tag:', 'tag:-' + near.slice(4), near.toUpperCase(), near + '/x', near + ' ']);
  return null;
}

export function hostileValue(rng: Rng, near?: unknown): unknown {
  if (typeof near === 'string' && rng.chance(0.5)) {
    const l = lookalike(rng, near);
    if (l !== null) return l;
  }
  switch (rng.int(0, 9)) {
    case 0:
      return rng.pick([null, true, false, [], {}, [null], { a: 1 }, '', 0]);
    case 1:
      return rng.pick(BOUNDARY_NUMBERS);
    case 2:
      return rng.pick(NUMERIC_STRINGS);
    case 3:
      return nastyChar(rng);
    case 4:
      return rng.pick(BAD_LOOKALIKES);
    case 5:
      // A valid-looking string with one bad character inside: the likeliest to reach the database.
      return typeof near === 'string' && near.length ? insertAt(rng, near, nastyChar(rng)) : 'x' + nastyChar(rng) + 'y';
    case 6: {
      const n = rng.pick([255, 256, 1024, 16 * 1024, 60 * 1024]);
      return typeof near === 'string' && near.length ? near.repeat(Math.ceil(n / near.length)).slice(0, n) : rng.pick(['a', 'é', '😀']).repeat(n);
    }
    case 7:
      return Array.isArray(near) ? [...near, ...Array.from({ length: rng.pick([1, 33, 200]) }, () => (near[0] ?? 'x'))] : [near ?? 'x'];
    case 8:
      return deep(rng.pick([32, 200, 1000]));
    default:
      return typeof near === 'number' ? rng.pick([near + 0.5, -near, near * 2 ** 31, String(near)]) : typeof near === 'string' ? near.toUpperCase() + ' ' : rng.int(-5, 5);
  }
}

function insertAt(rng: Rng, s: string, c: string): string {
  const i = rng.int(0, s.length);
  return s.slice(0, i) + c + s.slice(i);
}

function deep(n: number): unknown {
  let v: unknown = 1;
  for (let i = 0; i < n; i++) v = { a: v };
  return v;
}

/** One mutation of a valid JSON value (object bodies mostly). Says what it did. */
export function mutate(rng: Rng, value: unknown, schema: Schema): { value: unknown; what: string } {
  const copy = value === undefined ? undefined : (JSON.parse(JSON.stringify(value)) as unknown);
  if (copy === null || typeof copy !== 'object' || Array.isArray(copy) || rng.chance(0.08)) {
    const v = rng.pick<unknown>([null, [], [copy], 'x', 0, true, deep(64), copy === undefined ? {} : JSON.stringify(copy)]);
    return { value: v, what: 'whole body replaced' };
  }
  const obj = copy as Record<string, unknown>;
  const keys = Object.keys(obj);
  const required = schema.required ?? [];
  const kind = rng.int(0, 9);
  if (kind === 0 && required.length) {
    const k = rng.pick(required);
    delete obj[k];
    return { value: obj, what: `missing required field ${k}` };
  }
  if (kind === 1) {
    const k = rng.pick(EXTRA_KEYS);
    // defineProperty so "__proto__" becomes an own key and reaches the JSON text.
    Object.defineProperty(obj, k, { value: hostileValue(rng), enumerable: true, writable: true, configurable: true });
    return { value: obj, what: `extra field ${JSON.stringify(k)}` };
  }
  const strings = keys.filter((key) => typeof obj[key] === 'string' && schema.properties?.[key]?.const === undefined);
  if ((kind === 2 || kind === 3) && strings.length) {
    // One bad character in an otherwise valid field: the input likeliest to reach the database.
    const key = rng.pick(strings);
    obj[key] = insertAt(rng, obj[key] as string, nastyChar(rng));
    return { value: obj, what: `bad character in field ${key}` };
  }
  // A discriminator ("type") is left alone most of the time, so the rest of the message is reached.
  const plain = keys.filter((key) => schema.properties?.[key]?.const === undefined);
  const k = keys.length && rng.chance(0.85) ? rng.pick(plain.length && rng.chance(0.85) ? plain : keys) : rng.pick(Object.keys(schema.properties ?? { x: 1 }));
  const inner = obj[k];
  if (Array.isArray(inner) && inner.length && rng.chance(0.7)) {
    const i = rng.int(0, inner.length - 1);
    inner[i] = hostileValue(rng, inner[i]);
    return { value: obj, what: `field ${k}[${i}] replaced` };
  }
  obj[k] = hostileValue(rng, inner);
  return { value: obj, what: `field ${k} replaced` };
}

/** Raw body text that is not the JSON of anything well-formed. */
export function brokenJson(rng: Rng, valid: unknown): string {
  const text = JSON.stringify(valid ?? {});
  return rng.pick([
    text.slice(0, Math.max(0, text.length - 1)),
    '\ufeff' + text,
    text.replace('{', '{"a":1,"a":2,'),
    text + text,
    '{"a":' + '['.repeat(5000),
    text.replace(/"/g, "'"),
    '\u0000',
    'null',
    '[]',
    '1e999999',
    '"' + '\\u0000'.repeat(10) + '"',
  ]);
}

/** Path segment values: the edges of integers and strings, encoded or not. */
export function hostileSegment(rng: Rng): string {
  const raw = rng.pick<string>([
    '0', '-1', '2147483647', '2147483648', '4294967296', '9007199254740991', '9007199254740992', '9007199254740993', '1e3', '0x10', '1.5', 'NaN', 'Infinity', '-0',
    '%00', '%20', '%2e%2e', '..', '.', '%', '%zz', '%C0%AF', encodeURIComponent('😀'), encodeURIComponent('\u202e'), encodeURIComponent('a\u0000b'), 'a'.repeat(300), 'A', 'ABCD-EFGH', '٣', encodeURIComponent(' 1'),
  ]);
  return raw;
}
