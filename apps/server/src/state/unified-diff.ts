/**
 * A unified diff of two texts, line by line (`diff -u` / `git diff` form, 3 lines of context), for
 * the policy history. Myers' O(ND) algorithm on the lines between the common prefix and suffix
 * (an edit to a policy is most often a few lines in one place); past `MAX_EDIT` differing lines
 * the middle is shown as removed and re-added whole rather than searched for a shorter script.
 */

const CONTEXT = 3;
/** Bounds the search's memory (the saved frontiers grow with the square of the edit's size). */
const MAX_EDIT = 1000;

type Op = { kind: ' ' | '-' | '+'; line: string };

export function unifiedDiff(oldText: string, newText: string, oldName: string, newName: string): string {
  if (oldText === newText) return '';
  const ops = diffLines(lines(oldText), lines(newText));
  const out: string[] = [`--- ${oldName}`, `+++ ${newName}`];
  // Hunks: runs of changes with up to CONTEXT unchanged lines around them, merged when close.
  let i = 0;
  while (i < ops.length) {
    while (i < ops.length && ops[i]!.kind === ' ') i++;
    if (i >= ops.length) break;
    const start = Math.max(0, i - CONTEXT);
    let end = i;
    for (;;) {
      while (end < ops.length && ops[end]!.kind !== ' ') end++;
      let next = end;
      while (next < ops.length && ops[next]!.kind === ' ') next++;
      if (next < ops.length && next - end <= 2 * CONTEXT) end = next;
      else {
        end = Math.min(ops.length, end + CONTEXT);
        break;
      }
    }
    out.push(...hunk(ops, start, end));
    i = end;
  }
  return out.join('\n') + '\n';
}

/**
 * The text as lines with their newline kept, so a last line without one differs from the same
 * line with one (and the diff says "No newline at end of file", as diff(1) does).
 */
function lines(text: string): string[] {
  const out = text.split('\n').map((l) => l + '\n');
  const last = out.pop()!;
  if (last !== '\n') out.push(last.slice(0, -1));
  return out;
}

function hunk(ops: Op[], start: number, end: number): string[] {
  // Line numbers where the hunk starts, counted from the ops before it.
  let oldLine = 1;
  let newLine = 1;
  for (let k = 0; k < start; k++) {
    if (ops[k]!.kind !== '+') oldLine++;
    if (ops[k]!.kind !== '-') newLine++;
  }
  let oldCount = 0;
  let newCount = 0;
  const body: string[] = [];
  for (let k = start; k < end; k++) {
    const op = ops[k]!;
    if (op.kind !== '+') oldCount++;
    if (op.kind !== '-') newCount++;
    if (op.line.endsWith('\n')) body.push(op.kind + op.line.slice(0, -1));
    else body.push(op.kind + op.line, '\\ No newline at end of file');
  }
  const range = (line: number, count: number) => (count === 0 ? `${line - 1},0` : count === 1 ? `${line}` : `${line},${count}`);
  return [`@@ -${range(oldLine, oldCount)} +${range(newLine, newCount)} @@`, ...body];
}

/** The edit script from `a` to `b`: every line of both, in order, kept, removed or added. */
export function diffLines(a: string[], b: string[]): Op[] {
  let pre = 0;
  while (pre < a.length && pre < b.length && a[pre] === b[pre]) pre++;
  let suf = 0;
  while (suf < a.length - pre && suf < b.length - pre && a[a.length - 1 - suf] === b[b.length - 1 - suf]) suf++;
  const midA = a.slice(pre, a.length - suf);
  const midB = b.slice(pre, b.length - suf);
  const keep = (l: string): Op => ({ kind: ' ', line: l });
  return [...a.slice(0, pre).map(keep), ...myers(midA, midB), ...a.slice(a.length - suf).map(keep)];
}

function myers(a: string[], b: string[]): Op[] {
  const n = a.length;
  const m = b.length;
  const whole = (): Op[] => [...a.map((line) => ({ kind: '-' as const, line })), ...b.map((line) => ({ kind: '+' as const, line }))];
  if (n === 0 || m === 0) return whole();
  const max = Math.min(n + m, MAX_EDIT);
  const offset = max + 1;
  let v = new Int32Array(2 * max + 4);
  // Frontier before round d, diagonals -d-1..d+1 only (what backtracking reads).
  const trace: Int32Array[] = [];
  for (let d = 0; d <= max; d++) {
    trace.push(v.slice(offset - d - 1, offset + d + 2));
    const next = v.slice();
    for (let k = -d; k <= d; k += 2) {
      let x = k === -d || (k !== d && v[offset + k - 1]! < v[offset + k + 1]!) ? v[offset + k + 1]! : v[offset + k - 1]! + 1;
      let y = x - k;
      while (x < n && y < m && a[x] === b[y]) {
        x++;
        y++;
      }
      next[offset + k] = x;
      if (x >= n && y >= m) return backtrack(trace, d, a, b);
    }
    v = next;
  }
  return whole();
}

/** Walks the saved frontiers back from (n, m) to (0, 0), emitting the script in order. */
function backtrack(trace: Int32Array[], dEnd: number, a: string[], b: string[]): Op[] {
  const ops: Op[] = [];
  let x = a.length;
  let y = b.length;
  for (let d = dEnd; d > 0; d--) {
    const t = trace[d]!;
    const at = (k: number) => t[k + d + 1]!;
    const k = x - y;
    const down = k === -d || (k !== d && at(k - 1) < at(k + 1));
    const prevK = down ? k + 1 : k - 1;
    const prevX = at(prevK);
    const prevY = prevX - prevK;
    while (x > prevX && y > prevY) ops.push({ kind: ' ', line: a[--x]! }), y--;
    if (down) ops.push({ kind: '+', line: b[--y]! });
    else ops.push({ kind: '-', line: a[--x]! });
  }
  while (x > 0 && y > 0) ops.push({ kind: ' ', line: a[--x]! }), y--;
  return ops.reverse();
}
