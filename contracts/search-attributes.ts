// The platform's custom Temporal search attributes: the one list. Workflows set them, the signaller starts cases
// with them, the CLI, the console and the Web UI filter on them, and every server the platform runs on registers
// them from here (stack/temporal.sh reads them from `node scripts/search-attributes.ts`; test helpers register
// them through the operator API; a unit test holds docker-compose.yml to the same list). Workflow-safe.
import { SearchAttributeType, defineSearchAttributeKey } from '@temporalio/common';

/** Stage of a fraud case: MONITORING, MANUAL_REVIEW, REQUIRE_3DS, BLOCKED, CLEARED. */
export const FraudStage = defineSearchAttributeKey('FraudStage', SearchAttributeType.KEYWORD);
/** Alerts counted by the case. */
export const FraudAlertCount = defineSearchAttributeKey('FraudAlertCount', SearchAttributeType.INT);
/** Account of the case (also in the workflow id, but filterable on its own). */
export const FraudAccountId = defineSearchAttributeKey('FraudAccountId', SearchAttributeType.KEYWORD);
/**
 * Window start of an export run. Filter with a range (`ExportWindowStart >= "2026-01-01T10:00:00Z" AND ExportWindowStart <
 * "2026-01-01T11:00:00Z"`): the dev server's `=` on a Datetime finds nothing.
 */
export const ExportWindowStart = defineSearchAttributeKey('ExportWindowStart', SearchAttributeType.DATETIME);

/** Set by the Temporal server itself on workflows a Schedule starts (not registered by us). */
export const TemporalScheduledStartTime = defineSearchAttributeKey('TemporalScheduledStartTime', SearchAttributeType.DATETIME);

/**
 * Set by the Temporal server itself (1.28 and later) on a workflow whose workflow task failed or timed out so many
 * times in a row (dynamic config `system.numConsecutiveWorkflowTaskProblemsToTriggerSearchAttribute`, 5 by default,
 * 0 turns it off), and removed again when a task completes. Values: `category=WorkflowTaskFailed` or
 * `category=WorkflowTaskTimedOut`, and a `cause=...` (e.g. `cause=WorkflowTaskFailedCauseWorkflowWorkerUnhandledFailure`).
 * Not registered by us. It stays on a workflow that is terminated while stuck: filter on `ExecutionStatus` too.
 */
export const TemporalReportedProblems = defineSearchAttributeKey('TemporalReportedProblems', SearchAttributeType.KEYWORD_LIST);

/** Every attribute the platform registers. */
export const CUSTOM_SEARCH_ATTRIBUTES = [FraudStage, FraudAlertCount, FraudAccountId, ExportWindowStart] as const;

/** The type names the temporal CLI takes (`--search-attribute NAME=TYPE`, `operator search-attribute create --type`). */
export const CLI_TYPE_NAMES: Record<(typeof CUSTOM_SEARCH_ATTRIBUTES)[number]['type'], string> = {
  [SearchAttributeType.KEYWORD]: 'Keyword',
  [SearchAttributeType.INT]: 'Int',
  [SearchAttributeType.DATETIME]: 'Datetime',
};

/** `NAME=Type` per attribute, as the temporal CLI takes them. */
export const cliSearchAttributes = (): string[] => CUSTOM_SEARCH_ATTRIBUTES.map((k) => `${k.name}=${CLI_TYPE_NAMES[k.type]}`);
