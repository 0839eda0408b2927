// npm run chaos -- [--faults a,b|all] [--seed N] [--runs K] [--report]
// The fault-and-fuzz harness: for each fault and each of K seeds (N, N+1, …), one bounded run (chaos/run.ts) on the
// local stack, checked by the independent oracle. Results go to chaos/results/<fault>.jsonl (one line per run, the
// last run of a fault and seed wins in the report); --report writes chaos/README.md from every result there.
import { execFileSync } from 'node:child_process';
import { appendFileSync, mkdirSync } from 'node:fs';
import { Command, InvalidArgumentError } from 'commander';
import { repoRoot } from '../common/env.ts';
import { kafkaService, stack, stackProfile } from '../harness/stack.ts';
import { FAULTS, faultByName } from './faults.ts';
import { writeReport } from './report.ts';
import { runOnce, workflowBundle } from './run.ts';

const int = (v: string) => {
  const n = Number(v);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be a whole number');
  return n;
};

const program = new Command('chaos')
  .description('Fault-and-fuzz runs against the local stack, checked by an independent oracle')
  .option('--faults <names>', `comma-separated faults, or "all": ${FAULTS.map((f) => f.name).join(', ')}`, 'all')
  .option('--seed <n>', 'first seed', int, 1)
  .option('--runs <k>', 'seeds per fault', int, 1)
  .option('--duration <ms>', 'workload production time per run', int, 12_000)
  .option('--results-dir <dir>', 'where run results go', `${repoRoot}chaos/results`)
  .option('--report', 'write chaos/README.md from the results (after the runs, if any)', false)
  .option('--report-only', 'only write the report', false)
  .option('--order <o>', '"fault": every seed of one fault, then the next; "seed": every fault for one seed, then the next', 'fault')
  .option('--verbose', 'print each run\'s log as it goes', false)
  .parse();
const opts = program.opts<{ faults: string; seed: number; runs: number; duration: number; resultsDir: string; report: boolean; reportOnly: boolean; order: string; verbose: boolean }>();
if (!['fault', 'seed'].includes(opts.order)) program.error('--order: "fault" or "seed"');

// The profile is the shell's (eval "$(./dev env)" after ./dev up --cluster sets FRAUD_STACK_PROFILE=cluster).
const ofProfile = FAULTS.filter((f) => !f.profile || f.profile === stackProfile);
const names = opts.faults === 'all' ? ofProfile.map((f) => f.name) : opts.faults.split(',').map((s) => s.trim()).filter(Boolean);
for (const n of names) {
  if (!faultByName.has(n)) program.error(`--faults: unknown fault "${n}" (known: ${FAULTS.map((f) => f.name).join(', ')})`);
  if (!ofProfile.some((f) => f.name === n)) program.error(`--faults: "${n}" runs only on the ${faultByName.get(n)!.profile} profile; this shell is on the ${stackProfile} profile`);
}

let failed = 0;
if (!opts.reportOnly) {
  mkdirSync(opts.resultsDir, { recursive: true });
  const services = stackProfile === 'cluster' ? (['redis-ha', kafkaService, 'postgres', 'temporal-cluster', 'twilio-mock'] as const) : (['redis', 'kafka', 'temporal', 'twilio-mock'] as const);
  for (const s of services) await stack('up', s);
  const commit = execFileSync('git', ['describe', '--always', '--dirty'], { cwd: repoRoot, encoding: 'utf8' }).trim();
  const bundle = await workflowBundle(`${repoRoot}.stack/run/chaos-workflow-bundle.js`);
  const seeds = Array.from({ length: opts.runs }, (_, i) => opts.seed + i);
  const plan = opts.order === 'fault' ? names.flatMap((name) => seeds.map((seed) => [name, seed] as const)) : seeds.flatMap((seed) => names.map((name) => [name, seed] as const));
  for (const [name, seed] of plan) {
    {
      const fault = faultByName.get(name)!;
      const res = await runOnce(fault, seed, {
        durationMs: opts.duration, hostileCount: name === 'hostile-events' ? 40 : undefined, workflowBundle: bundle, log: opts.verbose ? (l) => console.log(`  ${l}`) : undefined,
      }).catch((err: Error) => ({
        fault: name, seed, passed: false, elapsedMs: 0, faultAtMs: 0, tally: undefined, failures: [`the run itself failed: ${err.stack ?? err.message}`], log: [],
      }));
      appendFileSync(`${opts.resultsDir}/${name}.jsonl`, `${JSON.stringify({ ...res, at: new Date().toISOString(), commit })}\n`);
      if (!res.passed) failed++;
      const t = res.tally;
      console.log(`${res.passed ? 'PASS' : 'FAIL'} ${name} seed ${seed} in ${(res.elapsedMs / 1000).toFixed(1)} s` +
        (t ? `: ${t.expectedAlerts} alerts (${t.alertsLost} lost, ${t.alertsDuplicated} dup), ${t.casesExpected} cases (${t.casesJammed} jammed), ${t.actionsExpected} actions (${t.actionsRepeated} repeated, ${t.actionsMissing} missing), ${t.hostileEvents} hostile events (${t.deadLettersMissing} not dead-lettered)` : ''));
      if (!res.passed) for (const f of res.failures.slice(0, 10)) console.log(`    ${f}`);
    }
  }
}
if (opts.report || opts.reportOnly) writeReport(opts.resultsDir, `${repoRoot}chaos/README.md`);
console.log(`${failed === 0 ? 'all runs passed' : `${failed} run(s) failed`}`);
process.exit(failed === 0 ? 0 : 1);
