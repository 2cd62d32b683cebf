import { describe, expect, it } from 'vitest';
import { terminalSafe, terminalSafeLines } from '../src/terminal-text.js';

describe('terminalSafe', () => {
  it('shows an OSC title escape as text instead of letting it act', () => {
    expect(terminalSafe('x\u001b]0;pwned\u0007')).toBe('x\\x1b]0;pwned\\x07');
  });

  it('escapes every C0 control, DEL and every C1 control', () => {
    for (let c = 0; c <= 0x9f; c++) {
      const ch = String.fromCharCode(c);
      const unsafe = c < 0x20 || c >= 0x7f;
      expect(terminalSafe(ch), `U+${c.toString(16)}`).toBe(unsafe ? `\\x${c.toString(16).padStart(2, '0')}` : ch);
    }
  });

  it('escapes bidi embeddings, overrides and isolates (a name that reads backwards)', () => {
    expect(terminalSafe('admin\u202egnp.exe')).toBe('admin\\u202egnp.exe');
    for (const c of [0x202a, 0x202b, 0x202c, 0x202d, 0x202e, 0x2066, 0x2067, 0x2068, 0x2069]) {
      expect(terminalSafe(String.fromCharCode(c))).toBe(`\\u${c.toString(16)}`);
    }
  });

  it('keeps ordinary text, non-Latin names and box-drawing characters as they are', () => {
    const s = 'laptop-1 Zoë 東京 █▀▄ ünïcödé';
    expect(terminalSafe(s)).toBe(s);
  });

  it('keeps one value on one line and is idempotent on its own output', () => {
    const once = terminalSafe('a\nb\r\tc\u009b31m');
    expect(once).toBe('a\\x0ab\\x0d\\x09c\\x9b31m');
    expect(terminalSafe(once)).toBe(once);
  });

  it('terminalSafeLines keeps line breaks and escapes what is inside each line', () => {
    expect(terminalSafeLines('one\u001b[2J\ntwo')).toBe('one\\x1b[2J\ntwo');
  });
});
