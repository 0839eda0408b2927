// Named waits that last. A loop marks what it is waiting on (a fetch, a batch's alert write, a claim); a wait older
// than `warnAfterMs` is logged with its name, details and age, and again every `warnAfterMs` while it lasts, so a
// process that has stopped making progress says where, instead of going quiet.
import type { Logger } from './logger.ts';

interface Wait {
  what: string;
  detail: (() => Record<string, unknown>) | undefined;
  since: number;
  warnedAt: number;
}

export class StallWatch {
  private readonly waits = new Map<string, Wait>();
  private readonly timer: NodeJS.Timeout;
  private readonly log: Logger;
  private readonly warnAfterMs: number;
  private readonly now: () => number;

  constructor(log: Logger, warnAfterMs = 30_000, now: () => number = Date.now) {
    this.log = log;
    this.warnAfterMs = warnAfterMs;
    this.now = now;
    this.timer = setInterval(() => this.check(), Math.max(100, Math.min(5_000, warnAfterMs / 2)));
    this.timer.unref();
  }

  /** `key` (a loop, a partition) is now waiting on `what`; `detail` is called only if the wait is logged. */
  enter(key: string, what: string, detail?: () => Record<string, unknown>): void {
    this.waits.set(key, { what, detail, since: this.now(), warnedAt: 0 });
  }

  /** `key` is no longer waiting on anything. */
  leave(key: string): void {
    this.waits.delete(key);
  }

  /** The waits older than `warnAfterMs` now (logged by the timer; exposed for tests and health checks). */
  stalled(now = this.now()): Array<{ key: string; what: string; forMs: number }> {
    return [...this.waits].filter(([, w]) => now - w.since >= this.warnAfterMs).map(([key, w]) => ({ key, what: w.what, forMs: now - w.since }));
  }

  check(now = this.now()): void {
    for (const [key, w] of this.waits) {
      if (now - w.since < this.warnAfterMs || now - w.warnedAt < this.warnAfterMs) continue;
      w.warnedAt = now;
      this.log.warn({ key, waitingOn: w.what, ...w.detail?.(), forMs: now - w.since }, `no progress: ${key} has been waiting on ${w.what} for ${Math.round((now - w.since) / 1000)} s`);
    }
  }

  close(): void {
    clearInterval(this.timer);
  }
}
