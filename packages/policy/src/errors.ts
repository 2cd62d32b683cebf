/** Where something is in a policy (or nodes) file, and what is wrong there. */
export interface Pos { line: number; col: number }

/** One located problem. `toString()` is `line:col: message`, the form the CLI prints. */
export class PolicyError extends Error {
  constructor(readonly pos: Pos, message: string) {
    super(message);
  }
  override toString(): string {
    return `${this.pos.line}:${this.pos.col}: ${this.message}`;
  }
}

/** A policy (or nodes file) that was not accepted, with every problem found, in file order. */
export class PolicyRejected extends Error {
  constructor(readonly errors: PolicyError[], readonly what = 'policy') {
    super(`${what} rejected: ${errors.length} problem${errors.length === 1 ? '' : 's'}`);
  }
}

export function byPosition(a: PolicyError, b: PolicyError): number {
  return a.pos.line - b.pos.line || a.pos.col - b.pos.col;
}
