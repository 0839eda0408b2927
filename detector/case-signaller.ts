// Delivers each new alert to its account's Temporal case workflow (signal-with-start), off the detection path.
//
// The detector's alert script appends every new alert to the Redis stream `fraud:alerts:stream` in the same atomic
// step as the guide's keys. This loop reads that stream with a consumer group and acknowledges an entry only after
// Temporal accepted the signal. So detection never waits for Temporal, and when Temporal is down the entries stay
// pending and are delivered when it returns; entries of a crashed signaller are claimed by another after
// `claimIdleMs`. Delivery is at least once; the workflow dedupes by alert id.
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, WorkflowIdReusePolicy } from '@temporalio/client';
import type { Redis } from 'ioredis';
import { Counter, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../common/logger.ts';
import { CASE_WORKFLOW_TYPE, alertBatchSignal, caseWorkflowId, type EscalationPolicy, type FraudCaseWorkflow } from '../contracts/case.ts';
import type { AlertSignal } from '../contracts/alert.ts';
import { FraudAccountId, FraudAlertCount, FraudStage } from '../contracts/search-attributes.ts';
import { RedisErrorCode, isRedisError } from '../contracts/failures.ts';
import { SIGNALLER_GROUP, alertKeys as keys } from '../contracts/redis-keys.ts';

export interface CaseSignallerOptions {
  temporalAddress: string;
  namespace: string;
  taskQueue: string;
  policy: EscalationPolicy;
  consumerName: string;
  concurrency: number;
  claimIdleMs: number;
}

type Entry = [id: string, fields: string[]];

export class CaseSignaller {
  private readonly redis: Redis;
  private readonly log: Logger;
  private readonly opts: CaseSignallerOptions;
  private readonly client: Client;
  private readonly connection: Connection;
  private running = false;
  /** Cuts a retry backoff short on stop. */
  private readonly stopping = new AbortController();
  private loop?: Promise<void>;
  private readonly signalled: Counter;
  private readonly failures: Counter;
  private readonly latency: Histogram;

  constructor(redis: Redis, log: Logger, registry: Registry, opts: CaseSignallerOptions) {
    this.redis = redis;
    this.log = log.child({ component: 'case-signaller' });
    this.opts = opts;
    this.connection = Connection.lazy({ address: opts.temporalAddress });
    this.client = new Client({ connection: this.connection, namespace: opts.namespace });
    this.signalled = new Counter({ name: 'signaller_alerts_signalled_total', help: 'Alerts delivered to case workflows', registers: [registry] });
    this.failures = new Counter({ name: 'signaller_failures_total', help: 'Failed signal attempts (retried)', registers: [registry] });
    this.latency = new Histogram({
      name: 'signaller_alert_to_signal_seconds',
      help: 'From the alert written in Redis to its signal accepted by Temporal',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60],
      registers: [registry],
    });
  }

  async start(): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', keys.stream, SIGNALLER_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!isRedisError(err, RedisErrorCode.BusyGroup)) throw err;
    }
    this.running = true;
    // Connect now rather than on the first alert (saves that alert ~100 ms); if Temporal is down, the loop retries.
    this.connection.ensureConnected().catch((err: Error) => this.log.warn({ err: err.message }, 'Temporal not reachable yet; alerts wait in the stream'));
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    await this.loop;
    await this.connection.close().catch(() => undefined);
  }

  private async run(): Promise<void> {
    let backoff = 250;
    let claimAt = 0;
    while (this.running) {
      try {
        // Our own unacknowledged entries first (a failed attempt), then entries of dead signallers, then new ones.
        let entries = await this.read('0');
        if (entries.length === 0 && Date.now() >= claimAt) {
          claimAt = Date.now() + this.opts.claimIdleMs / 2;
          const claimed = (await this.redis.xautoclaim(keys.stream, SIGNALLER_GROUP, this.opts.consumerName, this.opts.claimIdleMs, '0-0', 'COUNT', 200)) as [string, Entry[]];
          entries = claimed[1].filter((e) => e[1] !== null);
        }
        if (entries.length === 0) entries = await this.read('>');
        if (entries.length === 0) continue;
        await this.deliver(entries);
        backoff = 250;
      } catch (err) {
        this.failures.inc();
        this.log.warn({ err: (err as Error).message, retryInMs: backoff }, 'alert delivery to Temporal failed; will retry');
        await sleep(backoff, undefined, { signal: this.stopping.signal }).catch(() => undefined);
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  private async read(from: '0' | '>'): Promise<Entry[]> {
    const block = from === '>' ? ['BLOCK', '500'] : [];
    const res = (await this.redis.call(
      'XREADGROUP', 'GROUP', SIGNALLER_GROUP, this.opts.consumerName, 'COUNT', '200', ...block, 'STREAMS', keys.stream, from,
    )) as Array<[string, Entry[]]> | null;
    return res?.[0]?.[1] ?? [];
  }

  /**
   * Signal the entries, one signal per account carrying its alerts in stream order (under load an account's
   * alerts coalesce, which spares the server), with bounded concurrency; acknowledge what Temporal accepted;
   * throw if anything failed.
   */
  private async deliver(entries: Entry[]): Promise<void> {
    const byAccount = new Map<string, Array<{ id: string; alert: AlertSignal }>>();
    for (const [id, fields] of entries) {
      const alert = JSON.parse(fields[fields.indexOf('alert') + 1]!) as AlertSignal;
      const list = byAccount.get(alert.sender_account_id) ?? [];
      list.push({ id, alert });
      byAccount.set(alert.sender_account_id, list);
    }
    const groups = [...byAccount.values()];
    const acked: string[] = [];
    let firstError: unknown;
    let next = 0;
    const workerLoop = async () => {
      while (next < groups.length) {
        const group = groups[next++]!;
        try {
          await this.signal(group.map((g) => g.alert));
          const now = Date.now();
          for (const { id, alert } of group) {
            acked.push(id);
            this.signalled.inc();
            if (alert.detected_at) this.latency.observe((now - Date.parse(alert.detected_at)) / 1000);
          }
        } catch (err) {
          firstError ??= err;
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, groups.length) }, workerLoop));
    if (acked.length > 0) await this.redis.xack(keys.stream, SIGNALLER_GROUP, ...acked);
    if (firstError) throw firstError;
  }

  /** signal-with-start of one account's case with its alerts (the fields the case needs, not the whole JSON). */
  private async signal(alerts: AlertSignal[]): Promise<void> {
    const accountId = alerts[0]!.sender_account_id;
    const payload = alerts.map(
      (a): AlertSignal => ({
        alert_id: a.alert_id, sender_account_id: accountId, velocity_count: a.velocity_count, amount: a.amount,
        currency: a.currency, region: a.region, alert_timestamp: a.alert_timestamp,
        ...(a.detected_at ? { detected_at: a.detected_at } : {}),
      }),
    );
    await this.client.workflow.signalWithStart<FraudCaseWorkflow, [AlertSignal[]]>(CASE_WORKFLOW_TYPE, {
      workflowId: caseWorkflowId(accountId),
      taskQueue: this.opts.taskQueue,
      args: [{ accountId, policy: this.opts.policy }],
      signal: alertBatchSignal,
      signalArgs: [payload],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      typedSearchAttributes: [
        { key: FraudStage, value: 'MONITORING' },
        { key: FraudAlertCount, value: 0 },
        { key: FraudAccountId, value: accountId },
      ],
    });
  }
}
