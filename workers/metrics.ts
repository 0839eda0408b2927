// Prometheus metrics and the health endpoint of the worker, on WORKER_HEALTH_HOST:WORKER_HEALTH_PORT: GET /metrics
// and GET /healthz. The gauge cases_stuck counts the namespace's running cases whose workflow task keeps failing
// (common/cases.ts), refreshed every STUCK_CASES_INTERVAL; every worker of a namespace reports the same count, so
// alert on max(), not sum().
import type { Server } from 'node:http';
import type { Client } from '@temporalio/client';
import { serveStatus } from '../common/http-status.ts';
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import { countStuckCases, type StuckCases } from '../common/cases.ts';
import type { Logger } from '../common/logger.ts';
import { every, type Periodic } from '../common/periodic.ts';

export class WorkerMetrics {
  readonly registry = new Registry();
  readonly casesStuck = new Gauge({
    name: 'cases_stuck',
    help: 'Running fraud cases of the namespace whose workflow task keeps failing or timing out (Temporal\'s TemporalReportedProblems)',
    registers: [this.registry],
  });
  readonly stuckRefreshFailures = new Counter({
    name: 'cases_stuck_refresh_failures_total',
    help: 'Rounds in which counting the stuck cases failed (Temporal unreachable); cases_stuck keeps its last value',
    registers: [this.registry],
  });

  constructor() {
    collectDefaultMetrics({ register: this.registry, prefix: 'worker_' });
  }
}

/** Counts the stuck cases every `intervalMs` into cases_stuck; logs when the count rises and when it is back to 0. */
export class StuckCasesWatch {
  private last: number | undefined;
  private via: StuckCases['via'] | undefined;
  private poller: Periodic | undefined;
  private readonly deps: { client: Client; metrics: WorkerMetrics; log: Logger; intervalMs: number };

  constructor(deps: { client: Client; metrics: WorkerMetrics; log: Logger; intervalMs: number }) {
    this.deps = deps;
  }

  get count(): number | undefined {
    return this.last;
  }

  async refresh(): Promise<void> {
    const { client, metrics, log } = this.deps;
    try {
      const { count, via } = await client.withDeadline(Date.now() + 30_000, () => countStuckCases(client));
      if (via !== this.via) {
        if (via === 'scan') log.warn('Temporal does not know the search attribute TemporalReportedProblems (server before 1.28): stuck cases are counted by describing running cases');
        this.via = via;
      }
      metrics.casesStuck.set(count);
      if (count > (this.last ?? 0)) log.warn({ stuckCases: count }, `${count} fraud case(s) stuck: their workflow tasks keep failing (npm run cli -- case stuck)`);
      else if (count === 0 && (this.last ?? 0) > 0) log.info('no stuck fraud cases any more');
      this.last = count;
    } catch (err) {
      metrics.stuckRefreshFailures.inc();
      log.warn({ err }, 'could not count the stuck cases (retrying on the next round)');
    }
  }

  /** /healthz warnings: one while the last count found stuck cases. */
  warnings(): string[] {
    const n = this.last ?? 0;
    return n > 0 ? [`${n} fraud case(s) stuck: their workflow tasks keep failing; see npm run cli -- case stuck`] : [];
  }

  start(): void {
    this.poller ??= every(this.deps.intervalMs, () => this.refresh());
  }

  stop(): void {
    this.poller?.stop();
    this.poller = undefined;
  }
}

/** GET /metrics and GET /healthz (200 when `health().ok`, else 503; the body is `health()` as JSON). */
export function serveWorkerHttp(
  metrics: WorkerMetrics,
  health: () => { ok: boolean; warnings: string[] } & Record<string, unknown>,
  host: string,
  port: number,
): Promise<Server> {
  return serveStatus(metrics.registry, health, host, port);
}
