// Reading fraud cases from the client side, shared by the CLI, the console and the worker: the open review queue
// from Temporal visibility (search attributes + the workflow's `openReview` memo, no per-case query), the cases whose
// workflow tasks keep failing (stuck cases), and how ages and deadlines are shown.
import { isGrpcServiceError, type Client, type WorkflowExecutionDescription, type WorkflowExecutionInfo } from '@temporalio/client';
import pLimit from 'p-limit';
import { CASE_WORKFLOW_TYPE, type OpenReviewMemo } from '../contracts/case.ts';
import { FraudAccountId, FraudAlertCount, FraudStage, TemporalReportedProblems } from '../contracts/search-attributes.ts';

export interface OpenReview extends OpenReviewMemo {
  accountId: string;
  workflowId: string;
  stage: string;
  alertCount: number;
}

export const OPEN_REVIEWS_QUERY =
  `WorkflowType = '${CASE_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running' AND FraudStage IN ('MANUAL_REVIEW', 'REQUIRE_3DS', 'BLOCKED')`;

/** Open review tasks from Temporal visibility, most urgent first (CRITICAL before HIGH, then the earliest deadline). */
export async function openReviews(client: Client): Promise<OpenReview[]> {
  const out: OpenReview[] = [];
  for await (const wf of client.workflow.list({ query: OPEN_REVIEWS_QUERY })) {
    const review = wf.memo?.openReview as OpenReviewMemo | undefined;
    if (!review) continue;
    out.push({
      ...review,
      workflowId: wf.workflowId,
      accountId: wf.typedSearchAttributes.get(FraudAccountId) ?? wf.workflowId.replace(/^fraud-account-/, ''),
      stage: wf.typedSearchAttributes.get(FraudStage) ?? '?',
      alertCount: wf.typedSearchAttributes.get(FraudAlertCount) ?? 0,
    });
  }
  const rank = (r: OpenReview) => (r.priority === 'CRITICAL' ? 0 : 1);
  return out.sort((a, b) => rank(a) - rank(b) || Date.parse(a.dueAt) - Date.parse(b.dueAt));
}

const hm = (m: number) => (m < 60 ? `${m}m` : `${Math.floor(m / 60)}h${String(m % 60).padStart(2, '0')}m`);

/** How long ago `iso` was: `42m`, `3h05m`. */
export const ago = (iso: string, now = Date.now()) => hm(Math.round((now - Date.parse(iso)) / 60_000));

/** Time left until `iso`: `42m`, `3h05m`, or `overdue 7m`. */
export const left = (iso: string, now = Date.now()) => {
  const m = Math.round((Date.parse(iso) - now) / 60_000);
  return m < 0 ? `overdue ${-m}m` : hm(m);
};

// ---- Stuck cases -------------------------------------------------------------------------------------------------
//
// A case is stuck when its workflow task keeps failing (a bug or a non-deterministic change in the workflow code, a
// payload it cannot decode) or timing out: the workflow makes no progress, takes no signal or update into account
// and answers no query, while Temporal retries the task with growing backoff and the run stays "Running". Temporal
// server 1.28+ marks such a workflow itself with the search attribute TemporalReportedProblems (see
// contracts/search-attributes.ts) once the task failed `system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute`
// times in a row, and removes it when a task completes: one visibility query finds them all. On a server without
// the attribute the cases are found by a bounded scan instead: describe() of running cases, a pending workflow task
// on its second attempt or later.

/** The category of a problem found by a scan (a retried task) rather than reported by the server. */
export const RETRYING = 'WorkflowTaskRetrying';
/** Reported by the server (TemporalReportedProblems): the task failed its threshold of times in a row. */
export const reportedByServer = (p: TaskProblem): boolean => p.category !== RETRYING;

/** The categories the server reports, as the Web UI's "Task Failures" view queries them. */
export const STUCK_CATEGORIES = ['WorkflowTaskFailed', 'WorkflowTaskTimedOut'] as const;

export const RUNNING_CASES_QUERY = `WorkflowType = '${CASE_WORKFLOW_TYPE}' AND ExecutionStatus = 'Running'`;
export const STUCK_CASES_QUERY =
  `${RUNNING_CASES_QUERY} AND ${TemporalReportedProblems.name} IN (${STUCK_CATEGORIES.map((c) => `'category=${c}'`).join(', ')})`;

/** What is wrong with a case's workflow task. */
export interface TaskProblem {
  /** `WorkflowTaskFailed` or `WorkflowTaskTimedOut` (reported by the server), `WorkflowTaskRetrying` (found by a scan). */
  category: string;
  /** The server's cause, e.g. `WorkflowTaskFailedCauseWorkflowWorkerUnhandledFailure`. */
  cause?: string;
  /** Attempt of the pending workflow task: the failures in a row plus one (from describe()). */
  attempt?: number;
  /** When the streak began: the recorded failure's time, else when the pending attempt was first scheduled (ISO-8601). */
  since?: string;
  /** Message of the last failure the history recorded (the worker's error, e.g. a non-determinism). */
  lastError?: string;
}

/** The server's TemporalReportedProblems values (`category=...`, `cause=...`) as a problem; undefined when none. */
export function parseReportedProblems(values: readonly unknown[] | undefined | null): Pick<TaskProblem, 'category' | 'cause'> | undefined {
  if (!values || values.length === 0) return undefined;
  const fields = new Map<string, string>();
  for (const v of values) {
    if (typeof v !== 'string') continue;
    const eq = v.indexOf('=');
    if (eq > 0 && !fields.has(v.slice(0, eq))) fields.set(v.slice(0, eq), v.slice(eq + 1));
  }
  const category = fields.get('category');
  if (!category) return undefined;
  const cause = fields.get('cause');
  return cause ? { category, cause } : { category };
}

export interface StuckCase {
  accountId: string;
  workflowId: string;
  runId: string;
  stage: string;
  alertCount: number;
  problem: TaskProblem;
}

export interface StuckCases {
  /** At most `limit` of them. */
  cases: StuckCase[];
  /** How many there are in all (more than `cases.length` when the limit cut the list). */
  total: number;
  /** How they were found: the server's search attribute, or a scan of running cases (a server without it). */
  via: 'reported-problems' | 'scan';
  /** Scan only: running cases described, and whether that was all of them (false: `scanLimit` cut the scan). */
  scanned?: number;
  complete?: boolean;
}

export interface StuckCaseOptions {
  /** Cases returned at most (default 100); `total` still counts them all. */
  limit?: number;
  /** Describe each case returned (attempt, since) and read its last failure from the history. Default false. */
  details?: boolean;
  /** `auto` (default): the search attribute, or a scan when the server does not know it. */
  via?: 'auto' | 'reported-problems' | 'scan';
  /** Only the cases of this task queue (default: every queue). */
  taskQueue?: string;
  /** Scan: running cases described at most (default 1000). */
  scanLimit?: number;
  /** Scan: the pending workflow task attempt from which a case counts as stuck (default 2: it failed once). */
  minAttempt?: number;
  /** Scan: describe() calls at once (default 8). */
  concurrency?: number;
}

const timestampIso = (ts: { seconds?: unknown; nanos?: number | null } | null | undefined): string | undefined => {
  if (!ts || ts.seconds === undefined || ts.seconds === null) return undefined;
  const ms = Number(String(ts.seconds)) * 1000 + Math.floor((ts.nanos ?? 0) / 1e6);
  return Number.isFinite(ms) ? new Date(ms).toISOString() : undefined;
};

const caseFields = (wf: WorkflowExecutionInfo) => ({
  accountId: wf.typedSearchAttributes.get(FraudAccountId) ?? wf.workflowId.replace(/^fraud-account-/, ''),
  workflowId: wf.workflowId,
  runId: wf.runId,
  stage: wf.typedSearchAttributes.get(FraudStage) ?? '?',
  alertCount: wf.typedSearchAttributes.get(FraudAlertCount) ?? 0,
});

/**
 * The task problem of a described case, from its search attributes and pending workflow task: undefined when the
 * case is not running, or runs without a reported problem and its pending task (if any) is below `minAttempt`.
 */
export function taskProblemOf(d: WorkflowExecutionDescription, minAttempt = 2): TaskProblem | undefined {
  if (d.status.name !== 'RUNNING') return undefined;
  const reported = parseReportedProblems(d.typedSearchAttributes.get(TemporalReportedProblems));
  const pending = d.raw.pendingWorkflowTask;
  const attempt = pending?.attempt ?? undefined;
  if (!reported && !(attempt !== undefined && attempt >= minAttempt)) return undefined;
  const problem: TaskProblem = reported ?? { category: RETRYING };
  if (attempt) problem.attempt = attempt;
  const since = timestampIso(pending?.originalScheduledTime ?? pending?.scheduledTime);
  if (since) problem.since = since;
  return problem;
}

/**
 * The workflow task failures the history recorded since the last completed task, read newest first (up to
 * `maxEvents` events back): the last one's message and time, and the time of the first, when the streak began. Only
 * the first failure of a run of retries is written as an event; a signal arriving meanwhile schedules a new task and
 * so records its failure too.
 */
export async function lastTaskFailure(
  client: Client, workflowId: string, runId?: string, maxEvents = 500,
): Promise<{ message: string; at?: string; since?: string } | undefined> {
  let nextPageToken: Uint8Array | undefined;
  let seen = 0;
  let last: { message: string; at?: string; since?: string } | undefined;
  pages: do {
    const res = await client.workflowService.getWorkflowExecutionHistoryReverse({
      namespace: client.options.namespace, execution: { workflowId, runId }, maximumPageSize: 100, nextPageToken,
    });
    for (const e of res.history?.events ?? []) {
      seen++;
      if (e.workflowTaskCompletedEventAttributes) break pages; // the streak began after this task
      const failed = e.workflowTaskFailedEventAttributes;
      const timedOut = e.workflowTaskTimedOutEventAttributes;
      if (!failed && !timedOut) continue;
      const at = timestampIso(e.eventTime);
      last ??= {
        message: failed ? failed.failure?.message || 'workflow task failed (no message)' : 'workflow task timed out (no worker completed it in time)',
        at,
      };
      last.since = at;
    }
    nextPageToken = res.nextPageToken?.length ? res.nextPageToken : undefined;
  } while (nextPageToken && seen < maxEvents);
  return last;
}

/** describe() of one case and, when its workflow task is failing, the problem with the last failure's message. */
export async function caseTaskProblem(client: Client, workflowId: string): Promise<TaskProblem | undefined> {
  const d = await client.workflow.getHandle(workflowId).describe();
  return withLastError(client, d, taskProblemOf(d));
}

async function withLastError(client: Client, d: WorkflowExecutionDescription, problem: TaskProblem | undefined): Promise<TaskProblem | undefined> {
  if (!problem) return undefined;
  const last = await lastTaskFailure(client, d.workflowId, d.runId).catch(() => undefined);
  if (last) {
    problem.lastError = last.message;
    // The streak's first recorded failure: when the case got stuck.
    if (last.since) problem.since = last.since;
  }
  return problem;
}

/** The server rejected a query naming the attribute: it predates TemporalReportedProblems. */
function unknownAttribute(err: unknown): boolean {
  for (let e: unknown = err; e; e = (e as { cause?: unknown }).cause) {
    if (isGrpcServiceError(e)) return e.code === 3 && e.details.includes(TemporalReportedProblems.name);
  }
  return false;
}

/** Stuck cases, longest stuck first with `details` (else in visibility order). See the section comment above. */
export async function listStuckCases(client: Client, opts: StuckCaseOptions = {}): Promise<StuckCases> {
  const limit = opts.limit ?? 100;
  const via = opts.via ?? 'auto';
  let result: StuckCases | undefined;
  if (via !== 'scan') {
    try {
      result = await fromReportedProblems(client, limit, opts.taskQueue);
    } catch (err) {
      if (via === 'reported-problems' || !unknownAttribute(err)) throw err;
    }
  }
  result ??= await fromScan(client, limit, opts);
  if (opts.details) {
    const each = pLimit(opts.concurrency ?? 8);
    result.cases = await Promise.all(result.cases.map((c) => each(async () => {
      const d = await client.workflow.getHandle(c.workflowId, c.runId).describe().catch(() => undefined);
      const problem = d && (await withLastError(client, d, taskProblemOf(d) ?? c.problem));
      return problem ? { ...c, problem: { ...c.problem, ...problem } } : c;
    })));
    result.cases.sort((a, b) => (a.problem.since ?? '~').localeCompare(b.problem.since ?? '~'));
  }
  return result;
}

/** How many cases are stuck (for the gauge): a visibility count, or the scan's. */
export async function countStuckCases(client: Client, opts: Omit<StuckCaseOptions, 'limit' | 'details'> = {}): Promise<{ count: number; via: StuckCases['via'] }> {
  if (opts.via !== 'scan') {
    try {
      return { count: (await client.workflow.count(onQueue(STUCK_CASES_QUERY, opts.taskQueue))).count, via: 'reported-problems' };
    } catch (err) {
      if (opts.via === 'reported-problems' || !unknownAttribute(err)) throw err;
    }
  }
  const scan = await fromScan(client, 0, opts);
  return { count: scan.total, via: 'scan' };
}

async function fromReportedProblems(client: Client, limit: number, taskQueue?: string): Promise<StuckCases> {
  const query = onQueue(STUCK_CASES_QUERY, taskQueue);
  const cases: StuckCase[] = [];
  let total = 0;
  for await (const wf of client.workflow.list({ query, pageSize: Math.min(Math.max(limit, 1), 1000) })) {
    total++;
    if (cases.length < limit) {
      cases.push({ ...caseFields(wf), problem: parseReportedProblems(wf.typedSearchAttributes.get(TemporalReportedProblems)) ?? { category: 'WorkflowTaskFailed' } });
    } else {
      // The rest only counts: one count call instead of paging through every stuck case.
      total = Math.max(total, (await client.workflow.count(query)).count);
      break;
    }
  }
  return { cases, total, via: 'reported-problems' };
}

/** `query` narrowed to one task queue, when one is given. */
function onQueue(query: string, taskQueue: string | undefined): string {
  if (taskQueue === undefined) return query;
  if (!/^[\w.:@/-]{1,1000}$/.test(taskQueue)) throw new Error(`task queue ${JSON.stringify(taskQueue)} holds characters a visibility query cannot take`);
  return `${query} AND TaskQueue = '${taskQueue}'`;
}

async function fromScan(client: Client, limit: number, opts: StuckCaseOptions): Promise<StuckCases> {
  const scanLimit = opts.scanLimit ?? 1000;
  const minAttempt = opts.minAttempt ?? 2;
  const each = pLimit(opts.concurrency ?? 8);
  const running: WorkflowExecutionInfo[] = [];
  let complete = true;
  for await (const wf of client.workflow.list({ query: onQueue(RUNNING_CASES_QUERY, opts.taskQueue), pageSize: Math.min(scanLimit, 1000) || 1 })) {
    if (running.length >= scanLimit) {
      complete = false;
      break;
    }
    running.push(wf);
  }
  const found = await Promise.all(running.map((wf) => each(async () => {
    const d = await client.workflow.getHandle(wf.workflowId, wf.runId).describe().catch(() => undefined);
    const problem = d && taskProblemOf(d, minAttempt);
    return problem ? { ...caseFields(wf), problem } : undefined;
  })));
  const stuck = found.filter((c): c is StuckCase => c !== undefined);
  return { cases: stuck.slice(0, limit), total: stuck.length, via: 'scan', scanned: running.length, complete };
}

/** One line per problem, e.g. `WorkflowTaskFailed (WorkflowTaskFailedCauseWorkflowWorkerUnhandledFailure), attempt 6`. */
export function describeProblem(p: TaskProblem): string {
  return `${p.category}${p.cause ? ` (${p.cause})` : ''}${p.attempt ? `, attempt ${p.attempt}` : ''}`;
}
