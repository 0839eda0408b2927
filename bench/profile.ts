// Summarise a V8 .cpuprofile (node --cpu-prof): self time by function and by package/module.
//   node bench/profile.ts /tmp/detector-prof/CPU.*.cpuprofile [--top 25]
import { readFileSync } from 'node:fs';
import { repoRoot } from '../common/env.ts';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileEntry {
  name: string;
  where: string;
  selfMs: number;
  selfPct: number;
}

export interface ProfileSummary {
  file: string;
  totalMs: number;
  /** Share of samples that were not idle. */
  busyPct: number;
  topFunctions: ProfileEntry[];
  byModule: ProfileEntry[];
}

/** Where a function lives: a package name, a repo file, or a Node/V8 category. */
function moduleOf(url: string, functionName: string): string {
  if (!url) {
    if (functionName.startsWith('(')) return functionName; // (garbage collector), (idle), (program)
    return '(native)';
  }
  const nm = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (nm) return nm[1]!;
  if (url.startsWith('node:')) return 'node:' + url.slice(5).split('/')[0]!.replace(/^internal$/, 'internal');
  const path = url.replace(/^file:\/\//, '');
  if (path.startsWith(repoRoot)) return path.slice(repoRoot.length);
  return path;
}

function shortUrl(url: string): string {
  return url.replace(/^file:\/\//, '').replace(repoRoot, '').replace(/^.*node_modules\//, '');
}

export function summariseProfile(file: string, top = 25): ProfileSummary {
  const prof = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  const byId = new Map(prof.nodes.map((n) => [n.id, n]));
  const selfUs = new Map<number, number>();
  const samples = prof.samples ?? [];
  const deltas = prof.timeDeltas ?? [];
  // timeDeltas[i] is the time before sample i; attribute the interval after sample i to it (next delta).
  for (let i = 0; i < samples.length; i++) {
    const dt = deltas[i + 1] ?? 0;
    selfUs.set(samples[i]!, (selfUs.get(samples[i]!) ?? 0) + Math.max(0, dt));
  }
  let totalUs = 0;
  let idleUs = 0;
  const fn = new Map<string, { name: string; where: string; us: number }>();
  const mod = new Map<string, number>();
  for (const [id, us] of selfUs) {
    const n = byId.get(id);
    if (!n) continue;
    totalUs += us;
    const { functionName, url, lineNumber } = n.callFrame;
    if (functionName === '(idle)') idleUs += us;
    const name = functionName || '(anonymous)';
    const where = url ? `${shortUrl(url)}:${lineNumber + 1}` : '';
    const key = `${name}@${where}`;
    const e = fn.get(key) ?? { name, where, us: 0 };
    e.us += us;
    fn.set(key, e);
    const m = moduleOf(url, functionName);
    mod.set(m, (mod.get(m) ?? 0) + us);
  }
  const pct = (us: number) => Math.round((us / Math.max(1, totalUs)) * 1000) / 10;
  const ms = (us: number) => Math.round(us / 100) / 10;
  return {
    file,
    totalMs: ms(totalUs),
    busyPct: Math.round(((totalUs - idleUs) / Math.max(1, totalUs)) * 1000) / 10,
    topFunctions: [...fn.values()].sort((a, b) => b.us - a.us).slice(0, top).map((e) => ({ name: e.name, where: e.where, selfMs: ms(e.us), selfPct: pct(e.us) })),
    byModule: [...mod.entries()].sort((a, b) => b[1] - a[1]).slice(0, top).map(([m, us]) => ({ name: m, where: '', selfMs: ms(us), selfPct: pct(us) })),
  };
}

export function formatProfile(s: ProfileSummary): string {
  const lines = [`${s.file}: ${s.totalMs} ms sampled, ${s.busyPct}% not idle`, '', 'self time by module:'];
  for (const e of s.byModule) lines.push(`  ${String(e.selfPct).padStart(5)}%  ${String(e.selfMs).padStart(9)} ms  ${e.name}`);
  lines.push('', 'top functions by self time:');
  for (const e of s.topFunctions) lines.push(`  ${String(e.selfPct).padStart(5)}%  ${String(e.selfMs).padStart(9)} ms  ${e.name}  ${e.where}`);
  return lines.join('\n');
}

if (import.meta.main) {
  const args = process.argv.slice(2);
  const topIdx = args.indexOf('--top');
  const top = topIdx >= 0 ? Number(args.splice(topIdx, 2)[1]) : 25;
  if (args.length === 0) {
    process.stderr.write('usage: node bench/profile.ts FILE.cpuprofile [--top N]\n');
    process.exit(2);
  }
  for (const f of args) process.stdout.write(`${formatProfile(summariseProfile(f, top))}\n\n`);
}
