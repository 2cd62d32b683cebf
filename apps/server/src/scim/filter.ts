/**
 * SCIM filters (RFC 7644 3.4.2.2): `attr op value`, `attr pr`, `and`, `or`, `not (...)`,
 * parentheses. Operators and attribute names are case-insensitive, as the RFC says and as
 * provisioning clients send them (`userName Eq "x"`). Used for list filters (only `eq` joined by
 * `and` on a few attributes is served: `listConstraints`) and for the value filters of PATCH paths
 * (`emails[type eq "work"]`, `members[value eq "42"]`: `matches`).
 */
import { invalidFilter } from './errors.js';

export type CompareOp = 'eq' | 'ne' | 'co' | 'sw' | 'ew' | 'gt' | 'ge' | 'lt' | 'le';
export type FilterValue = string | number | boolean | null;
export type Filter =
  | { op: 'and' | 'or'; left: Filter; right: Filter }
  | { op: 'not'; expr: Filter }
  | { op: 'pr'; attr: string }
  | { op: CompareOp; attr: string; value: FilterValue };

const COMPARE = new Set<string>(['eq', 'ne', 'co', 'sw', 'ew', 'gt', 'ge', 'lt', 'le']);
/** Longest filter text taken; longer is refused before parsing. */
export const MAX_FILTER_LENGTH = 2048;

type Token = { t: 'word'; v: string } | { t: 'str'; v: string } | { t: '(' } | { t: ')' } | { t: '[' } | { t: ']' };

function tokenize(text: string): Token[] {
  const out: Token[] = [];
  let i = 0;
  while (i < text.length) {
    const c = text[i]!;
    if (c === ' ' || c === '\t' || c === '\n' || c === '\r') {
      i++;
    } else if (c === '(' || c === ')' || c === '[' || c === ']') {
      out.push({ t: c });
      i++;
    } else if (c === '"') {
      // A JSON string: the RFC's grammar for compValue.
      let j = i + 1;
      while (j < text.length && text[j] !== '"') j += text[j] === '\\' ? 2 : 1;
      if (j >= text.length) throw invalidFilter(`the string starting at character ${i + 1} of the filter is not closed with "`);
      try {
        out.push({ t: 'str', v: JSON.parse(text.slice(i, j + 1)) as string });
      } catch {
        throw invalidFilter(`the string starting at character ${i + 1} of the filter has an invalid escape`);
      }
      i = j + 1;
    } else {
      const m = /^[^\s()[\]"]+/.exec(text.slice(i))!;
      out.push({ t: 'word', v: m[0] });
      i += m[0].length;
    }
  }
  return out;
}

export function parseFilter(text: string): Filter {
  if (text.length > MAX_FILTER_LENGTH) throw invalidFilter(`the filter is longer than ${MAX_FILTER_LENGTH} characters`);
  const tokens = tokenize(text);
  let pos = 0;
  const peekWord = () => {
    const t = tokens[pos];
    return t?.t === 'word' ? t.v.toLowerCase() : undefined;
  };
  const describe = (t: Token | undefined) => (t === undefined ? 'the end of the filter' : t.t === 'word' ? `"${t.v}"` : t.t === 'str' ? `the string ${JSON.stringify(t.v)}` : `"${t.t}"`);

  const orExpr = (): Filter => {
    let left = andExpr();
    while (peekWord() === 'or') {
      pos++;
      left = { op: 'or', left, right: andExpr() };
    }
    return left;
  };
  const andExpr = (): Filter => {
    let left = unary();
    while (peekWord() === 'and') {
      pos++;
      left = { op: 'and', left, right: unary() };
    }
    return left;
  };
  const unary = (): Filter => {
    const t = tokens[pos];
    if (t?.t === '(') {
      pos++;
      const e = orExpr();
      if (tokens[pos]?.t !== ')') throw invalidFilter(`expected ")" but found ${describe(tokens[pos])}`);
      pos++;
      return e;
    }
    if (peekWord() === 'not') {
      pos++;
      if (tokens[pos]?.t !== '(') throw invalidFilter(`"not" must be followed by "(" but found ${describe(tokens[pos])}`);
      return { op: 'not', expr: unary() };
    }
    if (t?.t !== 'word') throw invalidFilter(`expected an attribute name but found ${describe(t)}`);
    const attr = t.v;
    if (!/^(urn:[^\s]+:)?[A-Za-z$][\w$-]*(\.[A-Za-z$][\w$-]*)?$/.test(attr)) throw invalidFilter(`"${attr}" is not an attribute name`);
    pos++;
    if (tokens[pos]?.t === '[') throw invalidFilter(`complex attribute filters such as "${attr}[...]" are not supported in a list filter`);
    const opTok = tokens[pos];
    const op = opTok?.t === 'word' ? opTok.v.toLowerCase() : undefined;
    if (op === 'pr') {
      pos++;
      return { op: 'pr', attr };
    }
    if (!op || !COMPARE.has(op)) throw invalidFilter(`expected an operator (eq, ne, co, sw, ew, gt, ge, lt, le, pr) after "${attr}" but found ${describe(opTok)}`);
    pos++;
    const v = tokens[pos];
    let value: FilterValue;
    if (v?.t === 'str') value = v.v;
    else if (v?.t === 'word' && /^(true|false|null)$/i.test(v.v)) value = v.v.toLowerCase() === 'null' ? null : v.v.toLowerCase() === 'true';
    else if (v?.t === 'word' && /^-?\d+(\.\d+)?([eE][+-]?\d+)?$/.test(v.v)) value = Number(v.v);
    else throw invalidFilter(`expected a value (a "quoted string", true, false, null or a number) after "${attr} ${op}" but found ${describe(v)}`);
    pos++;
    return { op: op as CompareOp, attr, value };
  };

  if (tokens.length === 0) throw invalidFilter('the filter is empty');
  const f = orExpr();
  if (pos < tokens.length) throw invalidFilter(`unexpected ${describe(tokens[pos])} after a complete filter expression`);
  return f;
}

/** The value of `attr` ("a" or "a.b") in `obj`, names compared case-insensitively. */
export function lookup(obj: unknown, attr: string): unknown {
  let cur: unknown = obj;
  for (const part of attr.split('.')) {
    if (cur === null || typeof cur !== 'object' || Array.isArray(cur)) return undefined;
    const key = Object.keys(cur).find((k) => k.toLowerCase() === part.toLowerCase());
    cur = key === undefined ? undefined : (cur as Record<string, unknown>)[key];
  }
  return cur;
}

const norm = (v: unknown) => (typeof v === 'string' ? v.toLowerCase() : v);

/** Whether `element` (one value of a multi-valued attribute) passes `f`; strings compare case-insensitively. */
export function matches(f: Filter, element: unknown): boolean {
  switch (f.op) {
    case 'and':
      return matches(f.left, element) && matches(f.right, element);
    case 'or':
      return matches(f.left, element) || matches(f.right, element);
    case 'not':
      return !matches(f.expr, element);
    case 'pr': {
      const v = lookup(element, f.attr);
      return v !== undefined && v !== null && v !== '' && !(Array.isArray(v) && v.length === 0);
    }
    default: {
      const raw = lookup(element, f.attr);
      // "True"/"False" strings, as some clients store booleans, compare equal to booleans.
      const have = typeof f.value === 'boolean' && typeof raw === 'string' && /^(true|false)$/i.test(raw) ? raw.toLowerCase() === 'true' : norm(raw);
      const want = norm(f.value);
      switch (f.op) {
        case 'eq':
          return have === want || (want === null && have === undefined);
        case 'ne':
          return !(have === want || (want === null && have === undefined));
        case 'co':
          return typeof have === 'string' && typeof want === 'string' && have.includes(want);
        case 'sw':
          return typeof have === 'string' && typeof want === 'string' && have.startsWith(want);
        case 'ew':
          return typeof have === 'string' && typeof want === 'string' && have.endsWith(want);
        default: {
          if (typeof have !== typeof want || have === null || want === null || typeof have === 'boolean') return false;
          const a = have as string | number;
          const b = want as string | number;
          return f.op === 'gt' ? a > b : f.op === 'ge' ? a >= b : f.op === 'lt' ? a < b : a <= b;
        }
      }
    }
  }
}

/**
 * A list filter as attribute = value constraints, all of which must hold: what Weft serves
 * (`eq` joined by `and`, on the attributes in `allowed`, compared by their canonical names).
 * Anything else is refused with invalidFilter naming what is not served.
 */
export function listConstraints(text: string, allowed: readonly string[], resource: string): { attr: string; value: string }[] {
  const out: { attr: string; value: string }[] = [];
  const walk = (f: Filter): void => {
    if (f.op === 'and') {
      walk(f.left);
      walk(f.right);
      return;
    }
    if (f.op !== 'eq') throw invalidFilter(`${resource} list filters support only "eq" joined by "and"; "${f.op}" is not served`);
    const bare = f.attr.replace(/^urn:ietf:params:scim:schemas:core:2\.0:(User|Group):/i, '');
    const attr = allowed.find((a) => a.toLowerCase() === bare.toLowerCase());
    if (!attr) throw invalidFilter(`${resource} can be filtered on ${allowed.join(', ')}; not on "${f.attr}"`);
    if (typeof f.value !== 'string') throw invalidFilter(`"${f.attr} eq" needs a "quoted string" value`);
    out.push({ attr, value: f.value });
  };
  walk(parseFilter(text));
  return out;
}
