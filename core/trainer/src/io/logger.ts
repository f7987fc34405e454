/** Where messages go. A service: rebind it to silence or capture output. */
export interface Logger {
  info(message: string): void;
  warn(message: string): void;
  debug(message: string): void;
}

export class ConsoleLogger implements Logger {
  constructor(private readonly verbose = false) {}
  info(message: string): void {
    process.stderr.write(`${message}\n`);
  }
  warn(message: string): void {
    process.stderr.write(`warning: ${message}\n`);
  }
  debug(message: string): void {
    if (this.verbose) process.stderr.write(`${message}\n`);
  }
}

/** Keeps messages in memory (tests). */
export class MemoryLogger implements Logger {
  readonly lines: string[] = [];
  info(m: string) {
    this.lines.push(m);
  }
  warn(m: string) {
    this.lines.push(`warning: ${m}`);
  }
  debug(m: string) {
    this.lines.push(`debug: ${m}`);
  }
}
