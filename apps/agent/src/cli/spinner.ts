/** A one-line spinner for a terminal; does nothing when stdout is not a TTY (scripts, logs). */
const FRAMES = ['⠋', '⠙', '⠹', '⠸', '⠼', '⠴', '⠦', '⠧', '⠇', '⠏'];

export class Spinner {
  private timer: NodeJS.Timeout | undefined;
  private frame = 0;

  constructor(private readonly out: NodeJS.WriteStream = process.stdout) {}

  start(text: string): void {
    if (!this.out.isTTY || this.timer) return;
    this.timer = setInterval(() => {
      this.out.write(`\r${FRAMES[this.frame++ % FRAMES.length]} ${text}`);
    }, 100);
  }

  stop(): void {
    if (!this.timer) return;
    clearInterval(this.timer);
    this.timer = undefined;
    this.out.write('\r\x1b[2K');
  }
}
