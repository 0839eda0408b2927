// Delivers each new alert to its account's Temporal case workflow (signal-with-start), off the detection path.
//
// The detector's alert script appends every new alert to the Redis stream `fraud:alerts:stream` in the same atomic
// step as the guide's keys. This loop reads that stream with a consumer group and acknowledges an entry only after
// Temporal accepted the signal. So detection never waits for Temporal, and when Temporal is down the entries stay
// pending and are delivered when it returns; entries of a crashed signaller are claimed by another after
// `claimIdleMs`. Delivery is at least once; the workflow dedupes by alert id. An entry that is not an alert (written
// by hand, or by another tool) cannot be delivered: it moves to `fraud:alerts:undeliverable` with the reason and is
// acknowledged, so it never holds up the alerts behind it.
import { setTimeout as sleep } from 'node:timers/promises';
import { Client, Connection, WorkflowIdReusePolicy, type ConnectionOptions } from '@temporalio/client';
import type { Redis } from 'ioredis';
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from '../common/logger.ts';
import { parseAlertSignal, type AlertSignal } from '../contracts/alert.ts';
import type { Parsed } from '../contracts/validation.ts';
import { CASE_WORKFLOW_TYPE, alertBatchSignal, caseWorkflowId, type EscalationPolicy, type FraudCaseWorkflow } from '../contracts/case.ts';
import { RedisErrorCode, isRedisError } from '../contracts/failures.ts';
import { SIGNALLER_GROUP, alertKeys as keys } from '../contracts/redis-keys.ts';
import { FraudAccountId, FraudAlertCount, FraudStage } from '../contracts/search-attributes.ts';

/** Where alerts go: one account's alerts, in stream order, in one call. Temporal in production, a fake in tests. */
export interface CaseDelivery {
  /** Open the connection ahead of the first alert; may fail (the loop retries delivery anyway). */
  connect(): Promise<void>;
  /** `signal` aborts the call (the signaller is stopping): the alerts stay pending in the stream. */
  deliver(accountId: string, alerts: AlertSignal[], signal: AbortSignal): Promise<void>;
  close(): Promise<void>;
}

/** `pending`, or a rejection with the signal's reason as soon as it is aborted. */
function untilAborted<T>(signal: AbortSignal, pending: Promise<T>): Promise<T> {
  if (signal.aborted) return Promise.reject(signal.reason as Error);
  return new Promise<T>((resolve, reject) => {
    const onAbort = () => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    pending.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}

/** signal-with-start of the account's case workflow, carrying its alerts in one `alerts` signal. */
export class TemporalCaseDelivery implements CaseDelivery {
  private readonly connection: Connection;
  private readonly client: Client;
  private readonly opts: { taskQueue: string; policy: EscalationPolicy };
  /** Calls not yet settled, aborted ones included. */
  private readonly inFlight = new Set<Promise<void>>();

  constructor(opts: { connection: ConnectionOptions; namespace: string; taskQueue: string; policy: EscalationPolicy }) {
    this.connection = Connection.lazy(opts.connection);
    this.client = new Client({ connection: this.connection, namespace: opts.namespace });
    this.opts = opts;
  }

  async connect(): Promise<void> {
    await this.connection.ensureConnected();
  }

  async deliver(accountId: string, alerts: AlertSignal[], signal: AbortSignal): Promise<void> {
    // While Temporal is unreachable the call waits for it (its first connect, which no signal aborts, included); a
    // stop must not wait with it. The entries stay pending: a call that still lands later is one the case dedupes.
    const call = this.connection.withAbortSignal(signal, () => this.client.workflow.signalWithStart<FraudCaseWorkflow, [AlertSignal[]]>(CASE_WORKFLOW_TYPE, {
      workflowId: caseWorkflowId(accountId),
      taskQueue: this.opts.taskQueue,
      args: [{ accountId, policy: this.opts.policy }],
      signal: alertBatchSignal,
      signalArgs: [alerts],
      workflowIdReusePolicy: WorkflowIdReusePolicy.ALLOW_DUPLICATE,
      typedSearchAttributes: [
        { key: FraudStage, value: 'MONITORING' },
        { key: FraudAlertCount, value: 0 },
        { key: FraudAccountId, value: accountId },
      ],
    }));
    const settled = call.then(() => undefined, () => undefined);
    this.inFlight.add(settled);
    void settled.finally(() => this.inFlight.delete(settled));
    await untilAborted(signal, call);
  }

  async close(): Promise<void> {
    // A call given up on (aborted while it waited for the server) may still be retrying inside the client, and the
    // client's retry throws, uncaught, if it finds the channel closed: give such calls a moment, else leave the
    // connection to the process's exit.
    if (this.inFlight.size > 0) await Promise.race([Promise.all(this.inFlight), sleep(1_000)]);
    if (this.inFlight.size === 0) await this.connection.close();
  }
}

export interface CaseSignallerOptions {
  consumerName: string;
  concurrency: number;
  claimIdleMs: number;
  /** Entries read per round (default 200). */
  batchSize?: number;
  /**
   * The stream is trimmed to about this many entries, never past one not yet acknowledged (default 1,000,000). An
   * undelivered alert is never trimmed: during a long Temporal outage the stream grows instead (watch the backlog
   * metrics and Redis memory).
   */
  streamMaxLen?: number;
  /**
   * An entry whose delivery Temporal refused this many times (see refusesThisRequest) while other accounts' went
   * through is set aside in the undeliverable stream (default 20). Outages never count.
   */
  maxDeliveryFailures?: number;
  /** How often the backlog is measured and the stream trimmed (default 5 s). */
  maintainEveryMs?: number;
}

type Entry = [id: string, fields: string[] | null];

/**
 * gRPC status codes with which Temporal refuses one request for what it carries (INVALID_ARGUMENT, NOT_FOUND,
 * FAILED_PRECONDITION, OUT_OF_RANGE), as opposed to an outage or overload (UNAVAILABLE, DEADLINE_EXCEEDED, …), which
 * is retried without limit. Only these count towards an entry's delivery bound; an error without a code never does.
 */
const REQUEST_REFUSED = new Set([3, 5, 9, 11]);
export function refusesThisRequest(err: unknown): boolean {
  const e = err as { code?: unknown; cause?: { code?: unknown }; message?: unknown };
  const code = typeof e?.code === 'number' ? e.code
    : typeof e?.cause?.code === 'number' ? e.cause.code
    : Number(/^(\d+) [A-Z_]+:/.exec(String(e?.message ?? ''))?.[1] ?? Number.NaN);
  return REQUEST_REFUSED.has(code);
}

/** XINFO's flat [name, value, name, value, …] reply as an object. */
const fieldMap = (flat: unknown[]): Record<string, unknown> => {
  const o: Record<string, unknown> = {};
  for (let i = 0; i + 1 < flat.length; i += 2) o[String(flat[i])] = flat[i + 1];
  return o;
};

export class CaseSignaller {
  private readonly redis: Redis;
  private readonly log: Logger;
  private readonly delivery: CaseDelivery;
  private readonly opts: CaseSignallerOptions;
  private running = false;
  /** Cuts a retry backoff short on stop. */
  private readonly stopping = new AbortController();
  private loop?: Promise<void>;
  private readonly signalled: Counter;
  private readonly undeliverable: Counter;
  private readonly failures: Counter;
  private readonly latency: Histogram;
  private readonly backlog: Gauge;
  private readonly oldestAge: Gauge;
  private readonly trimmed: Counter;
  /** Failed deliveries per entry id, counted only in rounds where other accounts' went through. */
  private readonly entryFailures = new Map<string, { count: number; error: string }>();

  constructor(deps: { redis: Redis; log: Logger; registry: Registry; delivery: CaseDelivery }, opts: CaseSignallerOptions) {
    this.redis = deps.redis;
    this.log = deps.log.child({ component: 'case-signaller' });
    this.delivery = deps.delivery;
    this.opts = opts;
    const registers = [deps.registry];
    this.signalled = new Counter({ name: 'signaller_alerts_signalled_total', help: 'Alerts delivered to case workflows', registers });
    this.undeliverable = new Counter({
      name: 'signaller_undeliverable_total', help: `Stream entries that are not alerts, moved to ${keys.undeliverable}`, registers,
    });
    this.failures = new Counter({ name: 'signaller_failures_total', help: 'Failed delivery rounds (retried)', registers });
    this.latency = new Histogram({
      name: 'signaller_alert_to_signal_seconds',
      help: 'From the alert written in Redis to its signal accepted by Temporal',
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 60],
      registers,
    });
    this.backlog = new Gauge({ name: 'signaller_backlog_entries', help: 'Alert stream entries not yet acknowledged (never read, or pending)', registers });
    this.oldestAge = new Gauge({ name: 'signaller_oldest_undelivered_seconds', help: 'Age of the oldest alert stream entry not yet acknowledged (0: none)', registers });
    this.trimmed = new Counter({ name: 'signaller_stream_trimmed_total', help: 'Acknowledged alert stream entries trimmed away', registers });
  }

  async start(): Promise<void> {
    try {
      await this.redis.xgroup('CREATE', keys.stream, SIGNALLER_GROUP, '0', 'MKSTREAM');
    } catch (err) {
      if (!isRedisError(err, RedisErrorCode.BusyGroup)) throw err;
    }
    this.running = true;
    // Connect now rather than on the first alert (saves that alert ~100 ms); if Temporal is down, the loop retries.
    this.delivery.connect().catch((err: unknown) => this.log.warn({ err }, 'Temporal not reachable yet; alerts wait in the stream'));
    this.loop = this.run();
  }

  async stop(): Promise<void> {
    this.running = false;
    this.stopping.abort();
    await this.loop;
    await this.delivery.close().catch(() => undefined);
  }

  private get batchSize(): number {
    return this.opts.batchSize ?? 200;
  }

  private async run(): Promise<void> {
    let backoff = 250;
    let claimAt = 0;
    let maintainAt = 0;
    while (this.running) {
      try {
        if (Date.now() >= maintainAt) {
          maintainAt = Date.now() + (this.opts.maintainEveryMs ?? 5000);
          await this.maintain();
        }
        // Our own unacknowledged entries first (a failed attempt), then entries of dead signallers, then new ones.
        let entries = await this.read('0');
        if (entries.length === 0 && Date.now() >= claimAt) {
          claimAt = Date.now() + this.opts.claimIdleMs / 2;
          const claimed = (await this.redis.xautoclaim(
            keys.stream, SIGNALLER_GROUP, this.opts.consumerName, this.opts.claimIdleMs, '0-0', 'COUNT', this.batchSize,
          )) as [string, Entry[], string[]?];
          entries = claimed[1];
          // Redis 7 drops pending entries that were trimmed away and names them here: say so, they were never delivered.
          const deleted = claimed[2] ?? [];
          if (deleted.length > 0) {
            this.undeliverable.inc(deleted.length);
            this.log.error({ entryIds: deleted }, 'alert stream entries were deleted before they were delivered (by hand: the signaller trims only acknowledged entries)');
          }
        }
        // New entries in the same round (waiting for them only when nothing else is to do): an account whose
        // delivery keeps failing is retried next to the others, it does not hold them up.
        entries = entries.concat(await this.read('>', entries.length === 0));
        if (entries.length === 0) continue;
        await this.deliver(entries);
        backoff = 250;
      } catch (err) {
        this.failures.inc();
        this.log.warn({ err, retryInMs: backoff }, 'alert delivery to Temporal failed; will retry');
        await sleep(backoff, undefined, { signal: this.stopping.signal }).catch(() => undefined);
        backoff = Math.min(backoff * 2, 10_000);
      }
    }
  }

  private async read(from: '0' | '>', wait = false): Promise<Entry[]> {
    const block = wait ? ['BLOCK', '500'] : [];
    const res = (await this.redis.call(
      'XREADGROUP', 'GROUP', SIGNALLER_GROUP, this.opts.consumerName, 'COUNT', String(this.batchSize), ...block, 'STREAMS', keys.stream, from,
    )) as Array<[string, Entry[]]> | null;
    return res?.[0]?.[1] ?? [];
  }

  /** The alert an entry carries, or why it carries none. */
  private static alertOf(fields: string[] | null): Parsed<AlertSignal> {
    // An entry trimmed away (MAXLEN) while pending comes back without fields.
    if (fields === null) return { ok: false, reason: 'entry was trimmed from the stream before delivery' };
    const i = fields.indexOf('alert');
    if (i < 0 || i % 2 !== 0 || fields[i + 1] === undefined) return { ok: false, reason: 'entry has no alert field' };
    let json: unknown;
    try {
      json = JSON.parse(fields[i + 1]!);
    } catch (err) {
      return { ok: false, reason: `alert is not JSON: ${(err as Error).message}` };
    }
    return parseAlertSignal(json);
  }

  /**
   * Signal the entries, one call per account carrying its alerts in stream order (under load an account's alerts
   * coalesce, which spares the server), with bounded concurrency; set aside entries that are not alerts; acknowledge
   * what Temporal accepted; throw if anything failed.
   */
  private async deliver(entries: Entry[]): Promise<void> {
    const byAccount = new Map<string, Array<{ id: string; alert: AlertSignal }>>();
    const rejected: Array<{ id: string; reason: string; fields: string[] | null }> = [];
    for (const [id, fields] of entries) {
      const parsed = CaseSignaller.alertOf(fields);
      if (!parsed.ok) {
        rejected.push({ id, reason: parsed.reason, fields });
        continue;
      }
      const account = parsed.value.sender_account_id;
      const list = byAccount.get(account) ?? [];
      list.push({ id, alert: parsed.value });
      byAccount.set(account, list);
    }
    if (rejected.length > 0) await this.setAside(rejected);

    const groups = [...byAccount.entries()];
    const acked: string[] = [];
    const failed: Array<{ id: string; error: string }> = [];
    const fieldsOf = new Map(entries);
    let firstError: unknown;
    let next = 0;
    const workerLoop = async () => {
      while (next < groups.length) {
        const [accountId, group] = groups[next++]!;
        try {
          await this.delivery.deliver(accountId, group.map((g) => g.alert), this.stopping.signal);
          const now = Date.now();
          for (const { id, alert } of group) {
            acked.push(id);
            this.signalled.inc();
            if (alert.detected_at) this.latency.observe((now - Date.parse(alert.detected_at)) / 1000);
          }
        } catch (err) {
          firstError ??= err;
          if (refusesThisRequest(err)) for (const { id } of group) failed.push({ id, error: err instanceof Error ? err.message : String(err) });
        }
      }
    };
    await Promise.all(Array.from({ length: Math.min(this.opts.concurrency, groups.length) }, workerLoop));
    if (acked.length > 0) await this.redis.xack(keys.stream, SIGNALLER_GROUP, ...acked);
    for (const id of acked) this.entryFailures.delete(id);
    if (failed.length > 0 && acked.length > 0) {
      // Others went through, these did not: something about these entries (or their cases), not an outage. Bounded.
      const max = this.opts.maxDeliveryFailures ?? 20;
      const giveUp: Array<{ id: string; reason: string; fields: string[] | null }> = [];
      for (const { id, error } of failed) {
        const f = { count: (this.entryFailures.get(id)?.count ?? 0) + 1, error };
        this.entryFailures.set(id, f);
        if (f.count >= max) giveUp.push({ id, reason: `delivery failed ${f.count} times while other accounts' alerts went through; last error: ${error}`, fields: fieldsOf.get(id) ?? null });
      }
      if (giveUp.length > 0) {
        await this.setAside(giveUp);
        for (const g of giveUp) this.entryFailures.delete(g.id);
      }
    }
    if (firstError) throw firstError;
  }

  /** Backlog metrics, and trimming of acknowledged entries only. */
  private async maintain(): Promise<void> {
    const groups = (await this.redis.call('XINFO', 'GROUPS', keys.stream)) as unknown[][];
    const group = groups.map(fieldMap).find((g) => g.name === SIGNALLER_GROUP);
    if (!group) return;
    const pending = (await this.redis.xpending(keys.stream, SIGNALLER_GROUP)) as [number, string | null, string | null, unknown];
    const lastDelivered = String(group['last-delivered-id'] ?? '0-0');
    const [firstUnread] = (await this.redis.xrange(keys.stream, `(${lastDelivered}`, '+', 'COUNT', 1)).map(([id]) => id);
    const lag = typeof group.lag === 'number' ? group.lag : firstUnread ? Number.NaN : 0;
    this.backlog.set(Number(pending[0] ?? 0) + (Number.isNaN(lag) ? 0 : lag));
    // The oldest entry not acknowledged: the oldest pending one, else the first never read.
    const oldest = pending[1] ?? firstUnread;
    this.oldestAge.set(oldest ? Math.max(0, (Date.now() - Number(oldest.split('-')[0])) / 1000) : 0);

    // Trim only acknowledged entries: to about streamMaxLen entries when all are acknowledged, else below the oldest
    // one that is not (the stream then stays above its cap rather than lose an alert).
    const length = await this.redis.xlen(keys.stream);
    const maxLen = this.opts.streamMaxLen ?? 1_000_000;
    if (length <= maxLen) return;
    const removed = oldest
      ? await this.redis.xtrim(keys.stream, 'MINID', '~', oldest)
      : await this.redis.xtrim(keys.stream, 'MAXLEN', '~', maxLen);
    if (removed > 0) this.trimmed.inc(removed);
    if (oldest && length - removed > maxLen) {
      this.log.warn({ length: length - removed, maxLen, oldestUndelivered: oldest }, 'alert stream above ALERT_STREAM_MAXLEN: entries not yet delivered are kept');
    }
  }

  /** Record entries that are not alerts in the undeliverable stream; acknowledge only those that were recorded. */
  private async setAside(rejected: Array<{ id: string; reason: string; fields: string[] | null }>): Promise<void> {
    const p = this.redis.pipeline();
    for (const r of rejected) {
      p.xadd(keys.undeliverable, 'MAXLEN', '~', '100000', '*', 'entry_id', r.id, 'reason', r.reason, 'fields', JSON.stringify(r.fields));
    }
    for (const [err] of (await p.exec()) ?? []) if (err) throw err; // nothing acknowledged: set aside again next round
    await this.redis.xack(keys.stream, SIGNALLER_GROUP, ...rejected.map((r) => r.id));
    this.undeliverable.inc(rejected.length);
    for (const r of rejected) this.log.error({ entryId: r.id, reason: r.reason }, `alert stream entry set aside in ${keys.undeliverable}`);
  }
}
