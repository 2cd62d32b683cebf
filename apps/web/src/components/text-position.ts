/** Between a text's character offsets and the 1-based line and column the policy check reports. */
/** The character offset of a 1-based line and column in `text`, clamped to the text. */
export function offsetOf(text: string, line: number, col: number): number {
  let off = 0;
  for (let l = 1; l < line; l++) {
    const nl = text.indexOf('\n', off);
    if (nl < 0) return text.length;
    off = nl + 1;
  }
  const end = text.indexOf('\n', off);
  const lineEnd = end < 0 ? text.length : end;
  return Math.min(off + Math.max(0, col - 1), lineEnd);
}

/** The 1-based line and column of a character offset (what the server's problems use). */
export function caretOf(text: string, offset: number): { line: number; col: number } {
  const before = text.slice(0, offset);
  const nl = before.lastIndexOf('\n');
  return { line: before.split('\n').length, col: offset - nl };
}
