// The pure parts of the operational views: Redis INFO memory, the memory warning and its crossings, the server's
// TemporalReportedProblems values, a described case's task problem, and the variables that tune them.
import { describe, expect, it } from '@jest/globals';
import type { Client, WorkflowExecutionDescription } from '@temporalio/client';
import { TypedSearchAttributes } from '@temporalio/common';
import { STUCK_CASES_QUERY, describeProblem, lastTaskFailure, parseReportedProblems, taskProblemOf } from '../../common/cases.ts';
import { detectorConfigSchema, workerConfigSchema } from '../../common/config.ts';
import { parseConfig } from '../../common/env.ts';
import { memoryTransition, memoryUsage, memoryWarning, parseInfoMemory } from '../../common/redis-memory.ts';
import { TemporalReportedProblems } from '../../contracts/search-attributes.ts';

// An excerpt of Redis 7.0's reply, CRLF line ends as on the wire.
const INFO = [
  '# Memory', 'used_memory:1039288', 'used_memory_human:1014.93K', 'used_memory_rss:12398592', 'used_memory_peak:1040928',
  'used_memory_peak_perc:99.84%', 'maxmemory:2147483648', 'maxmemory_human:2.00G', 'maxmemory_policy:noeviction',
  'mem_not_counted_for_evict:8', 'mem_allocator:jemalloc-5.3.0', '',
].join('\r\n');

describe('INFO memory', () => {
  it('when Redis answers INFO memory, then used, max and policy are read from their own lines only', () => {
    expect(parseInfoMemory(INFO)).toStrictEqual({ usedBytes: 1039288, maxBytes: 2147483648, policy: 'noeviction' });
  });

  it('when maxmemory is 0, then there is no limit and no usage share', () => {
    const m = parseInfoMemory(INFO.replace('maxmemory:2147483648', 'maxmemory:0'));
    expect(m.maxBytes).toBe(0);
    expect(memoryUsage(m)).toBeUndefined();
    expect(memoryWarning(m, 0.8)).toBeUndefined();
  });

  it('when the reply has no used_memory, then parsing fails instead of reporting 0', () => {
    expect(() => parseInfoMemory('# Memory\r\nmaxmemory:10\r\n')).toThrow(/used_memory/);
    expect(() => parseInfoMemory('used_memory:lots\r\n')).toThrow(/used_memory/);
  });
});

describe('memory warning', () => {
  const at = (used: number, policy = 'noeviction') => ({ usedBytes: used, maxBytes: 1000, policy });

  it('when usage is below the ratio, then there is no warning; at and above it, one naming share, limit and policy', () => {
    expect(memoryWarning(at(799), 0.8)).toBeUndefined();
    expect(memoryWarning(at(800), 0.8)).toMatch(/^redis memory at 80% of maxmemory .*warning from 80%.*refuses writes .*noeviction/);
    expect(memoryWarning(at(1200), 0.8)).toMatch(/at 120% of maxmemory/);
    expect(memoryWarning(at(900, 'allkeys-lru'), 0.8)).toMatch(/evicts keys .*allkeys-lru/);
  });

  it('when usage goes up past the ratio, stays there and comes back, then each crossing is reported once', () => {
    const readings = [100, 700, 850, 900, 950, 500, 400, 820];
    let high = false;
    const crossings: Array<string | undefined> = [];
    for (const used of readings) {
      const t = memoryTransition(high, at(used), 0.8);
      high = t.high;
      crossings.push(t.crossed);
    }
    expect(crossings).toStrictEqual([undefined, undefined, 'up', undefined, undefined, 'down', undefined, 'up']);
  });
});

describe('TemporalReportedProblems', () => {
  it('when the server reports a failing task, then category and cause are read from their values', () => {
    expect(parseReportedProblems(['category=WorkflowTaskFailed', 'cause=WorkflowTaskFailedCauseWorkflowWorkerUnhandledFailure']))
      .toStrictEqual({ category: 'WorkflowTaskFailed', cause: 'WorkflowTaskFailedCauseWorkflowWorkerUnhandledFailure' });
    expect(parseReportedProblems(['category=WorkflowTaskTimedOut'])).toStrictEqual({ category: 'WorkflowTaskTimedOut' });
  });

  it('when the attribute is absent, empty or has no category, then there is no problem', () => {
    for (const v of [undefined, null, [], ['cause=x'], ['nonsense', 42]]) expect(parseReportedProblems(v)).toBeUndefined();
  });

  it('when the stuck-case query is built, then it asks for running cases with either category', () => {
    expect(STUCK_CASES_QUERY).toBe(
      "WorkflowType = 'fraudCaseWorkflow' AND ExecutionStatus = 'Running' AND TemporalReportedProblems IN ('category=WorkflowTaskFailed', 'category=WorkflowTaskTimedOut')",
    );
  });
});

describe('task problem of a described case', () => {
  const described = (opts: { status?: string; problems?: string[]; attempt?: number }) => ({
    workflowId: 'fraud-account-ACC_1',
    runId: 'r1',
    status: { name: opts.status ?? 'RUNNING' },
    typedSearchAttributes: new TypedSearchAttributes(opts.problems ? [{ key: TemporalReportedProblems, value: opts.problems }] : []),
    raw: { pendingWorkflowTask: opts.attempt === undefined ? null : { attempt: opts.attempt, originalScheduledTime: { seconds: 1_800_000_000, nanos: 5_000_000 } } },
  }) as unknown as WorkflowExecutionDescription;

  it('when the server reported the problem, then it is the problem, with the pending attempt and its time', () => {
    const p = taskProblemOf(described({ problems: ['category=WorkflowTaskFailed', 'cause=C'], attempt: 3 }));
    expect(p).toStrictEqual({ category: 'WorkflowTaskFailed', cause: 'C', attempt: 3, since: '2027-01-15T08:00:00.005Z' });
    expect(describeProblem(p!)).toBe('WorkflowTaskFailed (C), attempt 3');
  });

  it('when nothing is reported but the pending task is retried, then it counts from the second attempt', () => {
    expect(taskProblemOf(described({ attempt: 1 }))).toBeUndefined();
    expect(taskProblemOf(described({}))).toBeUndefined();
    expect(taskProblemOf(described({ attempt: 2 }))).toMatchObject({ category: 'WorkflowTaskRetrying', attempt: 2 });
    expect(taskProblemOf(described({ attempt: 2 }), 3)).toBeUndefined();
  });

  it('when the case is no longer running, then it is not stuck, whatever attribute it kept', () => {
    expect(taskProblemOf(described({ status: 'TERMINATED', problems: ['category=WorkflowTaskFailed'], attempt: 4 }))).toBeUndefined();
  });
});

describe('last task failure from the history', () => {
  const ts = (s: number) => ({ seconds: 1_800_000_000 + s, nanos: 0 });
  const iso = (s: number) => new Date((1_800_000_000 + s) * 1000).toISOString();
  const failed = (s: number, message: string) => ({ eventTime: ts(s), workflowTaskFailedEventAttributes: { failure: { message } } });
  /** A client whose history, newest first, comes in pages of `pageSize` events. */
  const clientWith = (events: object[], pageSize = 100) => {
    const pages: number[] = [];
    const client = {
      options: { namespace: 'default' },
      workflowService: {
        getWorkflowExecutionHistoryReverse: async ({ nextPageToken }: { nextPageToken?: Uint8Array }) => {
          const from = nextPageToken ? nextPageToken[0]! : 0;
          pages.push(from);
          const next = from + pageSize < events.length ? new Uint8Array([from + pageSize]) : new Uint8Array();
          return { history: { events: events.slice(from, from + pageSize) }, nextPageToken: next };
        },
      },
    } as unknown as Client;
    return { client, pages };
  };

  it('when failures follow the last completed task, then the newest gives the message and the oldest the start of the streak', async () => {
    const history = [
      failed(30, 'newest'), { eventTime: ts(29), workflowExecutionSignaledEventAttributes: {} }, failed(20, 'older'),
      { eventTime: ts(15), workflowTaskTimedOutEventAttributes: {} }, { eventTime: ts(10), workflowTaskCompletedEventAttributes: {} }, failed(5, 'before'),
    ];
    const { client, pages } = clientWith(history, 2);
    expect(await lastTaskFailure(client, 'wf')).toStrictEqual({ message: 'newest', at: iso(30), since: iso(15) });
    expect(pages).toStrictEqual([0, 2, 4]); // stops at the completed task
  });

  it('when the last task completed, then there is no failure; when the history is long, then it reads a bounded part', async () => {
    expect(await lastTaskFailure(clientWith([{ workflowTaskCompletedEventAttributes: {} }, failed(1, 'old')]).client, 'wf')).toBeUndefined();
    const long = clientWith([failed(9, 'x'), ...Array.from({ length: 50 }, () => ({ activityTaskScheduledEventAttributes: {} }))], 10);
    expect(await lastTaskFailure(long.client, 'wf', undefined, 20)).toMatchObject({ message: 'x', since: iso(9) });
    expect(long.pages).toStrictEqual([0, 10]);
  });
});

describe('variables', () => {
  it('when nothing is set, then the watch polls every 15s, warns from 80% and the worker counts stuck cases every 60s', () => {
    const d = parseConfig(detectorConfigSchema, {});
    const w = parseConfig(workerConfigSchema, {});
    for (const c of [d, w]) {
      expect(c.REDIS_MEMORY_WARN_RATIO).toBe(0.8);
      expect(c.REDIS_MEMORY_POLL_INTERVAL).toBe(15_000);
    }
    expect(w.STUCK_CASES_INTERVAL).toBe(60_000);
  });

  it('when the ratio is set inside (0, 1), then it is taken; at 0, 1, beyond or not a number, then it is refused by name', () => {
    expect(parseConfig(workerConfigSchema, { REDIS_MEMORY_WARN_RATIO: '0.95' }).REDIS_MEMORY_WARN_RATIO).toBe(0.95);
    for (const bad of ['0', '1', '1.5', '-0.2', 'most']) {
      expect(() => parseConfig(detectorConfigSchema, { REDIS_MEMORY_WARN_RATIO: bad })).toThrow(/REDIS_MEMORY_WARN_RATIO: .*between 0 and 1|REDIS_MEMORY_WARN_RATIO: must be more than 0 and less than 1/);
    }
  });

  it('when an interval is not a duration or out of range, then it is refused by name', () => {
    expect(parseConfig(workerConfigSchema, { STUCK_CASES_INTERVAL: '5m' }).STUCK_CASES_INTERVAL).toBe(300_000);
    expect(() => parseConfig(workerConfigSchema, { STUCK_CASES_INTERVAL: '500ms' })).toThrow(/STUCK_CASES_INTERVAL: must be between 1s and 1d/);
    expect(() => parseConfig(workerConfigSchema, { STUCK_CASES_INTERVAL: 'often' })).toThrow(/STUCK_CASES_INTERVAL: must be a duration/);
    expect(() => parseConfig(detectorConfigSchema, { REDIS_MEMORY_POLL_INTERVAL: '2h' })).toThrow(/REDIS_MEMORY_POLL_INTERVAL: must be between 1s and 1h/);
  });
});
