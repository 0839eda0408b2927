// The analysts' and operators' command line: review queue, decisions, clearing, case state and audit trail.
//   npm run cli -- --help
import { Client, Connection, WorkflowUpdateFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { Command, Option } from 'commander';
import { AuditLog } from '../common/audit-log.ts';
import { ago, left, openReviews } from '../common/cases.ts';
import { loadConfig } from '../common/env.ts';
import { createRedis } from '../common/redis.ts';
import { cliConfigSchema } from '../common/config.ts';
import { registerExportCommands } from './export.ts';
import { caseStateQuery, caseWorkflowId, clearAccountSignal, completeReviewUpdate, type Decision } from '../contracts/case.ts';

const config = loadConfig(cliConfigSchema, 'cli');

async function temporal<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ address: config.TEMPORAL_ADDRESS, connectTimeout: '5s' }).catch((err: Error) => {
    throw new Error(`cannot reach Temporal at ${config.TEMPORAL_ADDRESS} (TEMPORAL_ADDRESS): ${err.message}`);
  });
  try {
    return await fn(new Client({ connection, namespace: config.TEMPORAL_NAMESPACE }));
  } finally {
    await connection.close();
  }
}

const print = (json: boolean, value: unknown, human: () => string) => process.stdout.write(`${json ? JSON.stringify(value, null, 2) : human()}\n`);
const table = (rows: string[][]) => {
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => c.padEnd(widths[i]!)).join('  ').trimEnd()).join('\n');
};

const decisions: Record<string, Decision> = { 'confirmed-fraud': 'CONFIRMED_FRAUD', 'false-positive': 'FALSE_POSITIVE' };

const program = new Command('fraud')
  .description('Fraud case operations: review queue, decisions, clearing, case state and audit trail')
  .showHelpAfterError();

program
  .command('reviews')
  .description('list open review tasks (from Temporal visibility), most urgent first')
  .option('--json', 'machine-readable output')
  .action(async (o: { json?: boolean }) => {
    const rows = await temporal(openReviews);
    print(!!o.json, rows, () =>
      rows.length === 0
        ? 'no open reviews'
        : table([
            ['ACCOUNT', 'TASK', 'PRIORITY', 'STAGE', 'ALERTS', 'AGE', 'SLA LEFT'],
            ...rows.map((r) => [r.accountId, r.taskId, r.priority, r.stage, String(r.alertCount), ago(r.openedAt), left(r.dueAt)]),
          ]),
    );
  });

program
  .command('review')
  .description("complete an account's open review with a decision")
  .argument('<account>', 'account id, e.g. ACC_100')
  .addOption(new Option('--decision <decision>', 'the finding').choices(Object.keys(decisions)).makeOptionMandatory())
  .requiredOption('--analyst <id>', 'who decides (recorded in the audit trail)')
  .option('--note <text>', 'why', '')
  .option('--task <taskId>', 'review task id (default: the open one)')
  .action(async (account: string, o: { decision: string; analyst: string; note: string; task?: string }) => {
    await temporal(async (client) => {
      const handle = client.workflow.getHandle(caseWorkflowId(account));
      const taskId = o.task ?? (await handle.query(caseStateQuery)).review?.taskId;
      if (!taskId) throw new Error(`${account} has no review task`);
      try {
        const r = await handle.executeUpdate(completeReviewUpdate, {
          args: [{ taskId, decision: decisions[o.decision]!, analystId: o.analyst, note: o.note }],
        });
        process.stdout.write(`review ${taskId}: ${r.decision}; case is now ${r.stage}\n`);
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError) throw new Error(`rejected: ${(err.cause as Error | undefined)?.message ?? err.message}`);
        throw err;
      }
    });
  });

program
  .command('clear')
  .description('clear an account: it leaves fraud:alerts:accounts, its counter resets and its case closes')
  .argument('<account>')
  .requiredOption('--by <who>', 'operator id (recorded in the audit trail)')
  .requiredOption('--reason <text>', 'why the account is cleared')
  .action(async (account: string, o: { by: string; reason: string }) => {
    await temporal(async (client) => {
      await client.workflow.getHandle(caseWorkflowId(account)).signal(clearAccountSignal, { by: o.by, reason: o.reason });
      process.stdout.write(`clearAccount sent to ${caseWorkflowId(account)}\n`);
    });
  });

program
  .command('case')
  .description("show an account's case state and audit trail")
  .argument('<account>')
  .option('--json', 'machine-readable output')
  .action(async (account: string, o: { json?: boolean }) => {
    const redis = createRedis(config, 'cli');
    try {
      const trail = await new AuditLog(redis).forAccount(account);
      const state = await temporal((client) => client.workflow.getHandle(caseWorkflowId(account)).query(caseStateQuery)).catch((err: unknown) => {
        if (err instanceof WorkflowNotFoundError) return undefined;
        throw err;
      });
      if (!state && trail.length === 0) throw new Error(`no case and no audit trail for ${account}`);
      print(!!o.json, { state, audit: trail }, () => {
        const head = state
          ? [
              `case ${state.caseId}`,
              `  stage ${state.stage}, ${state.alertCount} alerts, opened ${state.openedAt}${state.closedAt ? `, closed ${state.closedAt} (${state.closedReason})` : ''}`,
              state.review ? `  review ${state.review.taskId} ${state.review.priority} due ${state.review.dueAt}${state.review.decision ? ` decided ${state.review.decision.decision} by ${state.review.decision.analystId}` : ''}` : '  no review task',
              ...state.actions.map((a) => `  ${a.status === 'done' ? 'done  ' : 'FAILED'} ${a.action}: ${a.detail}`),
            ]
          : [`no running case for ${account}`];
        return [...head, '', 'audit trail:', ...trail.map((e) => `  ${e.at}  ${e.actor.padEnd(18)} ${e.type.padEnd(14)} ${e.detail}`)].join('\n');
      });
    } finally {
      redis.disconnect();
    }
  });

registerExportCommands(program, temporal);

try {
  await program.parseAsync();
} catch (err) {
  process.stderr.write(`error: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
