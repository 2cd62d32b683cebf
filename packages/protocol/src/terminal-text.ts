/**
 * Text that came from the network (hostnames, descriptions, user names, problem details) on its
 * way to a person's terminal. A value such as `x\e]0;pwned\a` would otherwise retitle the window,
 * rewrite the screen or hide a command behind a bidi override. Machine output (`--json`) never
 * goes through here: it stays exact.
 */

/** C0 controls, DEL, C1 controls, and the Unicode bidi embeddings, overrides and isolates. */
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u202a-\u202e\u2066-\u2069]/g;

/**
 * `s` with every control character shown as a visible escape (`\x1b`, `\u202e`), so the admin sees
 * that something odd is there instead of having it act on the terminal. Line breaks are escaped
 * too: one value stays on one line. Escaping is idempotent on its own output.
 */
export function terminalSafe(s: string): string {
  return s.replace(UNSAFE, (c) => {
    const code = c.charCodeAt(0);
    return code <= 0xff ? `\\x${code.toString(16).padStart(2, '0')}` : `\\u${code.toString(16).padStart(4, '0')}`;
  });
}

/** Multi-line human output: each line made safe, the line breaks kept. */
export function terminalSafeLines(text: string): string {
  return text.split('\n').map(terminalSafe).join('\n');
}
