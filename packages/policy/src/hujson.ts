/**
 * HuJSON (JWCC: JSON with `//` and `/* *\/` comments and trailing commas), parsed into a tree that
 * keeps the line and column of every value and key, so validation can point at what is wrong.
 * Duplicate object keys are an error (a policy with two `acls` sections has no single meaning).
 */
import { PolicyError, type Pos } from './errors.js';

export type JsonNode =
  | { kind: 'object'; pos: Pos; entries: { key: string; keyPos: Pos; value: JsonNode }[] }
  | { kind: 'array'; pos: Pos; items: JsonNode[] }
  | { kind: 'string'; pos: Pos; value: string }
  | { kind: 'number'; pos: Pos; value: number }
  | { kind: 'boolean'; pos: Pos; value: boolean }
  | { kind: 'null'; pos: Pos };

/** Parses `text`; throws a PolicyError at the first syntax error (later ones cannot be located reliably). */
export function parseHuJson(text: string): JsonNode {
  return new Parser(text).document();
}

const MAX_DEPTH = 64;

class Parser {
  private i = 0;
  private line = 1;
  private lineStart = 0;
  constructor(private readonly s: string) {}

  document(): JsonNode {
    if (this.s.charCodeAt(0) === 0xfeff) this.i = 1;
    this.skipTrivia();
    const v = this.value(0);
    this.skipTrivia();
    if (this.i < this.s.length) this.fail(`unexpected ${this.describe()} after the end of the document`);
    return v;
  }

  private pos(): Pos {
    return { line: this.line, col: this.i - this.lineStart + 1 };
  }

  private fail(message: string, at: Pos = this.pos()): never {
    throw new PolicyError(at, message);
  }

  private describe(): string {
    if (this.i >= this.s.length) return 'end of input';
    return JSON.stringify(this.s[this.i]);
  }

  private skipTrivia(): void {
    const s = this.s;
    while (this.i < s.length) {
      const c = s[this.i]!;
      if (c === '\n') {
        this.i++;
        this.line++;
        this.lineStart = this.i;
      } else if (c === ' ' || c === '\t' || c === '\r') {
        this.i++;
      } else if (c === '/' && s[this.i + 1] === '/') {
        while (this.i < s.length && s[this.i] !== '\n') this.i++;
      } else if (c === '/' && s[this.i + 1] === '*') {
        const start = this.pos();
        this.i += 2;
        for (;;) {
          if (this.i >= s.length) this.fail('unterminated /* comment', start);
          if (s[this.i] === '*' && s[this.i + 1] === '/') {
            this.i += 2;
            break;
          }
          if (s[this.i] === '\n') {
            this.line++;
            this.lineStart = this.i + 1;
          }
          this.i++;
        }
      } else {
        return;
      }
    }
  }

  private value(depth: number): JsonNode {
    if (depth > MAX_DEPTH) this.fail(`nested deeper than ${MAX_DEPTH} levels`);
    const pos = this.pos();
    const c = this.s[this.i];
    if (c === '{') return this.object(pos, depth);
    if (c === '[') return this.array(pos, depth);
    if (c === '"') return { kind: 'string', pos, value: this.string() };
    if (c === '-' || (c !== undefined && c >= '0' && c <= '9')) return { kind: 'number', pos, value: this.number() };
    for (const [word, node] of [['true', { kind: 'boolean', pos, value: true }], ['false', { kind: 'boolean', pos, value: false }], ['null', { kind: 'null', pos }]] as const) {
      if (this.s.startsWith(word, this.i)) {
        this.i += word.length;
        return node;
      }
    }
    this.fail(`expected a value, found ${this.describe()}`);
  }

  private object(pos: Pos, depth: number): JsonNode {
    this.i++;
    const entries: { key: string; keyPos: Pos; value: JsonNode }[] = [];
    const seen = new Set<string>();
    for (;;) {
      this.skipTrivia();
      if (this.s[this.i] === '}') {
        this.i++;
        return { kind: 'object', pos, entries };
      }
      const keyPos = this.pos();
      if (this.s[this.i] !== '"') this.fail(`expected a "quoted" key or }, found ${this.describe()}`);
      const key = this.string();
      if (seen.has(key)) this.fail(`duplicate key ${JSON.stringify(key)}`, keyPos);
      seen.add(key);
      this.skipTrivia();
      if (this.s[this.i] !== ':') this.fail(`expected : after key ${JSON.stringify(key)}, found ${this.describe()}`);
      this.i++;
      this.skipTrivia();
      entries.push({ key, keyPos, value: this.value(depth + 1) });
      this.skipTrivia();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] !== '}') this.fail(`expected , or } in object, found ${this.describe()}`);
    }
  }

  private array(pos: Pos, depth: number): JsonNode {
    this.i++;
    const items: JsonNode[] = [];
    for (;;) {
      this.skipTrivia();
      if (this.s[this.i] === ']') {
        this.i++;
        return { kind: 'array', pos, items };
      }
      items.push(this.value(depth + 1));
      this.skipTrivia();
      if (this.s[this.i] === ',') this.i++;
      else if (this.s[this.i] !== ']') this.fail(`expected , or ] in array, found ${this.describe()}`);
    }
  }

  private string(): string {
    const start = this.pos();
    const s = this.s;
    this.i++;
    let out = '';
    for (;;) {
      if (this.i >= s.length) this.fail('unterminated string', start);
      const c = s[this.i]!;
      if (c === '"') {
        this.i++;
        return out;
      }
      if (c === '\n' || c.charCodeAt(0) < 0x20) this.fail('control character or line break inside a string (escape it)');
      if (c === '\\') {
        const e = s[this.i + 1];
        const simple: Record<string, string> = { '"': '"', '\\': '\\', '/': '/', b: '\b', f: '\f', n: '\n', r: '\r', t: '\t' };
        if (e !== undefined && Object.hasOwn(simple, e)) {
          out += simple[e];
          this.i += 2;
        } else if (e === 'u' && /^[0-9a-fA-F]{4}$/.test(s.slice(this.i + 2, this.i + 6))) {
          out += String.fromCharCode(parseInt(s.slice(this.i + 2, this.i + 6), 16));
          this.i += 6;
        } else {
          this.fail(`bad escape \\${e ?? ''} in string`);
        }
      } else {
        out += c;
        this.i++;
      }
    }
  }

  private number(): number {
    const m = /^-?(0|[1-9]\d*)(\.\d+)?([eE][+-]?\d+)?/.exec(this.s.slice(this.i, this.i + 400));
    if (!m) this.fail(`malformed number`);
    this.i += m[0].length;
    return Number(m[0]);
  }
}
