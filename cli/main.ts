// The analysts' and operators' command line: review queue, decisions, clearing, case state and audit trail, stuck cases.
//   npm run cli -- --help
import { Client, Connection, WorkflowUpdateFailedError, WorkflowNotFoundError } from '@temporalio/client';
import { Command, InvalidArgumentError, Option } from 'commander';
import { AuditLog } from '../common/audit-log.ts';
import { ago, caseTaskProblem, describeProblem, left, listStuckCases, openReviews, reportedByServer, type TaskProblem } from '../common/cases.ts';
import { loadConfig } from '../common/env.ts';
import { createRedis, exitOnRefusedLogin } from '../common/redis.ts';
import { cliConfigSchema } from '../common/config.ts';
import { registerExportCommands } from './export.ts';
import { caseStateQuery, caseWorkflowId, clearAccountSignal, completeReviewUpdate, type CaseState, type Decision } from '../contracts/case.ts';
import { temporalConnectionOptions } from '../common/temporal-connection.ts';

const config = loadConfig(cliConfigSchema, 'cli');

async function temporal<T>(fn: (client: Client) => Promise<T>): Promise<T> {
  const connection = await Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: '5s' }).catch((err: Error) => {
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

const caseCommand = program
  .command('case')
  .description("a case: its state, a failing workflow task and the audit trail (case show ACC_1, or case ACC_1), or the stuck cases (case stuck)");

/** How long `case show` waits for the caseState query (a stuck case answers none). */
const QUERY_MS = 10_000;

const oneLine = (text: string, max = 100) => {
  const line = text.replace(/\s+/g, ' ').trim();
  return line.length > max ? `${line.slice(0, max - 1)}…` : line;
};

function problemLines(p: TaskProblem): string[] {
  return [
    `  ${reportedByServer(p) ? 'STUCK: its workflow task keeps failing' : 'WORKFLOW TASK RETRYING (it failed or timed out)'}: ${describeProblem(p)}${p.since ? `, since ${p.since}` : ''}`,
    ...(p.lastError ? [`    last error: ${oneLine(p.lastError, 300)}`] : []),
    '    the case takes no alert, decision or clearing until a fixed worker completes the task (or the workflow is reset)',
  ];
}

caseCommand
  .command('show', { isDefault: true })
  .description("show an account's case state, a failing workflow task, and the audit trail")
  .argument('<account>')
  .option('--json', 'machine-readable output')
  .action(async (account: string, o: { json?: boolean }) => {
    const redis = createRedis(config, 'cli');
    exitOnRefusedLogin(redis, 'cli', config);
    try {
      const trail = await new AuditLog(redis).forAccount(account);
      const workflowId = caseWorkflowId(account);
      const found = await temporal(async (client): Promise<{ state?: CaseState; problem?: TaskProblem; stateError?: string }> => {
        let problem: TaskProblem | undefined;
        try {
          problem = await caseTaskProblem(client, workflowId);
        } catch (err) {
          if (err instanceof WorkflowNotFoundError) return {};
          throw err;
        }
        // A stuck case answers no query (it would wait for a workflow task that keeps failing): describe() and the
        // history say what is wrong instead.
        if (problem && reportedByServer(problem)) return { problem, stateError: 'not queried: its workflow task keeps failing' };
        try {
          return { state: await client.withDeadline(Date.now() + QUERY_MS, () => client.workflow.getHandle(workflowId).query(caseStateQuery)), problem };
        } catch (err) {
          return { problem, stateError: (err as Error).message };
        }
      });
      const { state, problem, stateError } = found;
      if (!state && !problem && !stateError && trail.length === 0) throw new Error(`no case and no audit trail for ${account}`);
      print(!!o.json, { state, problem, stateError, audit: trail }, () => {
        const head = state
          ? [
              `case ${state.caseId}`,
              `  stage ${state.stage}, ${state.alertCount} alerts, opened ${state.openedAt}${state.closedAt ? `, closed ${state.closedAt} (${state.closedReason})` : ''}`,
              state.review ? `  review ${state.review.taskId} ${state.review.priority} due ${state.review.dueAt}${state.review.decision ? ` decided ${state.review.decision.decision} by ${state.review.decision.analystId}` : ''}` : '  no review task',
              ...state.actions.map((a) => `  ${a.status === 'done' ? 'done  ' : 'FAILED'} ${a.action}: ${a.detail}`),
            ]
          : stateError
            ? [`case ${workflowId}: state unavailable (${problem ? oneLine(stateError) : `caseState query: ${oneLine(stateError)}`})`]
            : [`no running case for ${account}`];
        return [...head, ...(problem ? problemLines(problem) : []), '', 'audit trail:', ...trail.map((e) => `  ${e.at}  ${e.actor.padEnd(18)} ${e.type.padEnd(14)} ${e.detail}`)].join('\n');
      });
    } finally {
      redis.disconnect();
    }
  });

caseCommand
  .command('stuck')
  .description('list the cases whose workflow task keeps failing (Temporal reports them), longest stuck first')
  .option('--limit <n>', 'show at most this many', (v) => {
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1 || n > 1000) throw new InvalidArgumentError('a whole number from 1 to 1000');
    return n;
  }, 100)
  .option('--task-queue <name>', 'only the cases of this task queue')
  .option('--json', 'machine-readable output')
  .action(async (o: { limit: number; taskQueue?: string; json?: boolean }) => {
    const stuck = await temporal((client) => listStuckCases(client, { limit: o.limit, details: true, taskQueue: o.taskQueue }));
    print(!!o.json, stuck, () => {
      if (stuck.total === 0) return `no stuck cases${stuck.via === 'scan' ? ` (scanned ${stuck.scanned} running cases${stuck.complete ? '' : ', not all'})` : ''}`;
      return [
        table([
          ['ACCOUNT', 'STAGE', 'ALERTS', 'PROBLEM', 'ATTEMPT', 'STUCK FOR', 'LAST ERROR'],
          ...stuck.cases.map((c) => [
            c.accountId, c.stage, String(c.alertCount), `${c.problem.category}${c.problem.cause ? ` (${c.problem.cause})` : ''}`,
            c.problem.attempt ? String(c.problem.attempt) : '', c.problem.since ? ago(c.problem.since) : '', oneLine(c.problem.lastError ?? '', 60),
          ]),
        ]),
        '',
        `${stuck.total} stuck case(s)${stuck.cases.length < stuck.total ? `, ${stuck.cases.length} shown` : ''}${stuck.via === 'scan' ? ` (found by describing ${stuck.scanned} running cases: this server has no TemporalReportedProblems${stuck.complete ? '' : '; not all were scanned'})` : ''}. Details: npm run cli -- case show ACCOUNT`,
      ].join('\n');
    });
  });

registerExportCommands(program, temporal);

try {
  await program.parseAsync();
} catch (err) {
  process.stderr.write(`error: ${(err as Error).message}\n`);
  process.exitCode = 1;
}
