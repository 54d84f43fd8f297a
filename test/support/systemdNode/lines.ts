// Lines of launcher.sh's stdout (its protocol: "cgroup PATH", "nspawn PID", "leader PID",
// "forwarding PID", "stopped"), awaited one at a time with a deadline.

import type { ChildProcess } from "node:child_process";

export class LineQueue {
  private buffer = "";
  private readonly lines: string[] = [];
  private ended = false;
  private wake: (() => void) | undefined;

  constructor(child: ChildProcess) {
    child.stdout?.setEncoding("utf8");
    child.stdout?.on("data", (chunk: string) => {
      this.buffer += chunk;
      let newline: number;
      while ((newline = this.buffer.indexOf("\n")) >= 0) {
        this.lines.push(this.buffer.slice(0, newline));
        this.buffer = this.buffer.slice(newline + 1);
      }
      this.wake?.();
    });
    const ended = (): void => {
      this.ended = true;
      this.wake?.();
    };
    child.stdout?.once("close", ended);
    child.once("error", ended);
  }

  /** The next line, or undefined when the stream ended or the deadline passed. */
  async next(deadline: number): Promise<string | undefined> {
    for (;;) {
      const line = this.lines.shift();
      if (line !== undefined) {
        return line;
      }
      const remaining = deadline - Date.now();
      if (this.ended || remaining <= 0) {
        return undefined;
      }
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, Math.min(remaining, 1000));
        this.wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
      this.wake = undefined;
    }
  }

  /** The value of the next line, which must be "<key> <value>". */
  async expect(key: string, deadline: number, log: () => string): Promise<string> {
    const line = await this.next(deadline);
    if (line === undefined) {
      throw new Error(`systemd node: no "${key}" from the launcher in time\n${log()}`);
    }
    if (!line.startsWith(`${key} `)) {
      throw new Error(
        `systemd node: expected "${key} ..." from the launcher, got "${line}"\n${log()}`,
      );
    }
    return line.slice(key.length + 1);
  }
}
