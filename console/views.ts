// The console's pages: plain server-rendered HTML (escaped by `html`), one stylesheet, one small client script.
import type { AuditEntry } from '../contracts/audit.ts';
import { ago, left, reportedByServer, type OpenReview, type StuckCases, type TaskProblem } from '../common/cases.ts';
import type { CaseState } from '../contracts/case.ts';
import type { AlertView } from './alerts.ts';
import { html, type Html } from './html.ts';
import { can, type User } from './users.ts';

export interface Flash {
  kind: 'ok' | 'error';
  text: string;
}

export interface PageContext {
  user?: User;
  csrfToken: string;
  flash?: Flash;
}

const fmtTime = (iso: string | undefined) => (iso ? iso.replace('T', ' ').replace(/\.\d+Z$|Z$/, ' UTC') : '');

export const caseHref = (accountId: string) => `/cases/${encodeURIComponent(accountId)}`;

function layout(title: string, ctx: PageContext, body: Html, opts: { script?: boolean } = {}): string {
  const u = ctx.user;
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="csrf-token" content="${ctx.csrfToken}">
<title>${title} · fraudwatch console</title>
<link rel="stylesheet" href="/static/console.css">
</head>
<body>
<header class="top">
  <a class="brand" href="/">fraudwatch <span>analyst console</span></a>
  ${u
    ? html`<form class="open-case" method="get" action="/cases"><input name="account" placeholder="account id, e.g. ACC_100" aria-label="account id" required><button>Open case</button></form>
  <div class="who"><span data-testid="signed-in-user">${u.name}</span> <span class="role role-${u.role}">${u.role}</span>
    <form method="post" action="/logout"><input type="hidden" name="_csrf" value="${ctx.csrfToken}"><button class="link">Sign out</button></form></div>`
    : ''}
</header>
<main>
${ctx.flash ? html`<p class="flash flash-${ctx.flash.kind}" role="status" data-testid="flash">${ctx.flash.text}</p>` : ''}
${body}
</main>
${opts.script ? html`<script src="/socket.io/socket.io.min.js"></script><script src="/static/console.js"></script>` : ''}
</body>
</html>`.text;
}

export function loginPage(ctx: PageContext, opts: { error?: string; next?: string; username?: string }): string {
  return layout('Sign in', ctx, html`
<section class="card narrow">
  <h1>Sign in</h1>
  ${opts.error ? html`<p class="flash flash-error" role="alert" data-testid="login-error">${opts.error}</p>` : ''}
  <form method="post" action="/login" class="stack">
    <input type="hidden" name="_csrf" value="${ctx.csrfToken}">
    <input type="hidden" name="next" value="${opts.next ?? '/'}">
    <label>User <input name="username" autocomplete="username" value="${opts.username ?? ''}" required autofocus></label>
    <label>Password <input name="password" type="password" autocomplete="current-password" required></label>
    <button type="submit">Sign in</button>
  </form>
  <p class="hint">Accounts are made with <code>npm run console -- add-user NAME --role analyst</code>.
  <code>./dev up</code> creates the first one and prints how to sign in.</p>
</section>`);
}

export function reviewsTable(reviews: OpenReview[] | { error: string }, now = Date.now()): Html {
  if (!Array.isArray(reviews)) return html`<p class="flash flash-error">Review queue unavailable: ${reviews.error}</p>`;
  if (reviews.length === 0) return html`<p class="empty">No open reviews.</p>`;
  return html`<div class="scroll"><table class="grid" data-testid="review-queue">
<thead><tr><th>Account</th><th>Priority</th><th>Stage</th><th>Alerts</th><th>Age</th><th>SLA left</th></tr></thead>
<tbody>${reviews.map((r) => html`<tr data-account="${r.accountId}">
  <td><a href="${caseHref(r.accountId)}">${r.accountId}</a></td>
  <td><span class="prio prio-${r.priority}">${r.priority}</span></td>
  <td><span class="stage stage-${r.stage}">${r.stage}</span></td>
  <td class="num">${r.alertCount}</td>
  <td>${ago(r.openedAt, now)}</td>
  <td class="${Date.parse(r.dueAt) < now ? 'overdue' : ''}" title="due ${fmtTime(r.dueAt)}">${left(r.dueAt, now)}</td>
</tr>`)}</tbody>
</table></div>`;
}

/** The dashboard's stuck cases: how many, and a link to each case page (at most the list's limit of them). */
export function stuckCasesPanel(stuck: StuckCases | { error: string }): Html {
  if ('error' in stuck) return html`<p class="flash flash-error">Stuck cases unavailable: ${stuck.error}</p>`;
  const scan = stuck.via === 'scan'
    ? html` <span class="hint">(found by describing ${stuck.scanned ?? 0} running cases${stuck.complete ? '' : ', not all of them'}: this Temporal server does not report problems itself)</span>`
    : '';
  if (stuck.total === 0) return html`<p class="empty" data-testid="stuck-count" data-count="0">No stuck cases.${scan}</p>`;
  return html`<p class="stuck-summary"><strong data-testid="stuck-count" data-count="${stuck.total}">${stuck.total}</strong> stuck case${stuck.total === 1 ? '' : 's'}${stuck.cases.length < stuck.total ? html` (the first ${stuck.cases.length} shown)` : ''}: their workflow tasks keep failing, so they take no alert, decision or clearing.${scan}</p>
<div class="scroll"><table class="grid" data-testid="stuck-cases">
<thead><tr><th>Account</th><th>Stage</th><th>Alerts</th><th>Problem</th></tr></thead>
<tbody>${stuck.cases.map((c) => html`<tr data-account="${c.accountId}">
  <td><a href="${caseHref(c.accountId)}">${c.accountId}</a></td>
  <td><span class="stage stage-${c.stage}">${c.stage}</span></td>
  <td class="num">${c.alertCount}</td>
  <td>${c.problem.category}${c.problem.cause ? html` <span class="hint">${c.problem.cause}</span>` : ''}</td>
</tr>`)}</tbody>
</table></div>`;
}

export function dashboardPage(
  ctx: PageContext,
  data: { reviews: OpenReview[] | { error: string }; flagged: number | undefined; stuck: StuckCases | { error: string } },
): string {
  return layout('Dashboard', ctx, html`
<section class="card" data-testid="stuck-panel">
  <h2>Stuck cases</h2>
  <p class="hint">Cases whose workflow task fails again and again (Temporal's <code>TemporalReportedProblems</code>). Refreshes every 15 s.</p>
  <div id="stuck-cases">${stuckCasesPanel(data.stuck)}</div>
</section>
<section class="card">
  <h2>Review queue</h2>
  <p class="hint">Open review tasks (Temporal visibility), most urgent first. Refreshes every 15 s.</p>
  <div id="review-queue">${reviewsTable(data.reviews)}</div>
</section>
<section class="card">
  <h2>Live alerts <span id="live-status" class="live-status" data-testid="live-status">connecting…</span></h2>
  <p class="hint">Velocity alerts as the detector writes them (Redis pub/sub <code>fraud:alerts:*</code>), newest first.
  ${data.flagged !== undefined ? html`Flagged accounts: <strong data-testid="flagged-count">${data.flagged}</strong>.` : ''}</p>
  <div class="scroll"><table class="grid" id="alerts" data-testid="alerts">
    <thead><tr><th>Time (event)</th><th>Account</th><th>Velocity</th><th>Amount</th><th>Region</th><th>Detected</th></tr></thead>
    <tbody></tbody>
  </table></div>
  <p class="empty" id="alerts-empty">No alerts yet.</p>
</section>`, { script: true });
}

export interface CaseView {
  accountId: string;
  /** From describe(): undefined when there is no workflow for the account. */
  workflow?: { status: string; runId: string };
  /** Its workflow task keeps failing (from describe() and the history): the case is stuck. */
  problem?: TaskProblem;
  state?: CaseState;
  stateError?: string;
  trail: AuditEntry[];
  latestAlert?: AlertView;
  temporalUrl: string;
}

const DECIDE_OPTIONS = [
  ['CONFIRMED_FRAUD', 'Confirmed fraud', 'blocks the card and notifies the issuer'],
  ['FALSE_POSITIVE', 'False positive', 'clears the account and closes the case'],
] as const;

function reviewSection(ctx: PageContext, c: CaseView): Html {
  const r = c.state?.review;
  if (!r) return html`<p class="empty">This case has no review task.</p>`;
  const decided = r.decision;
  const canDecide = ctx.user && can.decide(ctx.user.role);
  const open = !decided && c.state?.stage !== 'CLEARED' && c.workflow?.status === 'RUNNING';
  return html`
<dl class="facts">
  <dt>Task</dt><dd><code>${r.taskId}</code></dd>
  <dt>Priority</dt><dd><span class="prio prio-${r.priority}">${r.priority}</span>${r.slaBreached ? ' (SLA breached)' : ''}</dd>
  <dt>Opened</dt><dd>${fmtTime(r.openedAt)} (${ago(r.openedAt)} ago)</dd>
  <dt>Due</dt><dd>${fmtTime(r.dueAt)}${open ? html` (<span data-testid="sla-left">${left(r.dueAt)}</span> left)` : ''}</dd>
  ${decided ? html`<dt>Decision</dt><dd data-testid="decision"><strong>${decided.decision}</strong> by ${decided.analystId} at ${fmtTime(decided.decidedAt)}${decided.note ? html` — “${decided.note}”` : ''}</dd>` : ''}
</dl>
${open && canDecide
    ? html`<form method="post" action="${caseHref(c.accountId)}/review" class="stack decide" data-testid="review-form">
  <input type="hidden" name="_csrf" value="${ctx.csrfToken}">
  <input type="hidden" name="taskId" value="${r.taskId}">
  <fieldset><legend>Decision</legend>
  ${DECIDE_OPTIONS.map(([value, label, what]) => html`<label class="radio"><input type="radio" name="decision" value="${value}" required> <strong>${label}</strong> <span class="hint">${what}</span></label>`)}
  </fieldset>
  <label>Note <textarea name="note" rows="2" maxlength="500" placeholder="why (recorded in the audit trail)"></textarea></label>
  <button type="submit">Complete review as ${ctx.user!.name}</button>
</form>`
    : open
      ? html`<p class="hint" data-testid="read-only">Your role (${ctx.user?.role}) can read this case but not decide it.</p>`
      : ''}`;
}

function clearSection(ctx: PageContext, c: CaseView): Html {
  if (!ctx.user || !can.clear(ctx.user.role) || c.workflow?.status !== 'RUNNING' || c.state?.stage === 'CLEARED') return html``;
  return html`<section class="card">
  <h2>Clear the account</h2>
  <p class="hint">Sends <code>clearAccount</code>: the account leaves <code>fraud:alerts:accounts</code>, its counter and alert key are deleted, and the case closes.</p>
  <form method="post" action="${caseHref(c.accountId)}/clear" class="stack" data-testid="clear-form">
    <input type="hidden" name="_csrf" value="${ctx.csrfToken}">
    <label>Reason <input name="reason" maxlength="500" required placeholder="e.g. verified with the cardholder"></label>
    <button type="submit" class="danger">Clear ${c.accountId} as ${ctx.user.name}</button>
  </form>
</section>`;
}

function timeline(trail: AuditEntry[]): Html {
  if (trail.length === 0) return html`<p class="empty">No audit entries.</p>`;
  return html`<ol class="timeline" data-testid="timeline">${[...trail].reverse().map((e) => html`<li class="ev ev-${e.type}">
  <time datetime="${e.at}">${fmtTime(e.at)}</time> <span class="actor">${e.actor}</span> <span class="type">${e.type}</span>
  <div class="detail">${e.detail}</div></li>`)}</ol>`;
}

function problemBox(p: TaskProblem): Html {
  return html`<div class="flash flash-error" role="alert" data-testid="stuck">
  ${reportedByServer(p) ? html`<strong>This case is stuck:</strong> its workflow task keeps failing` : html`<strong>This case's workflow task is being retried:</strong> it failed or timed out`},
  so it takes no alert, decision or clearing until a worker completes the task (fixed workflow code, or a reset).
  <dl class="facts">
    <dt>Problem</dt><dd>${p.category}${p.cause ? html` (${p.cause})` : ''}</dd>
    ${p.attempt ? html`<dt>Attempt</dt><dd>${p.attempt}</dd>` : ''}
    ${p.since ? html`<dt>Since</dt><dd>${fmtTime(p.since)} (${ago(p.since)} ago)</dd>` : ''}
    ${p.lastError ? html`<dt>Last error</dt><dd><code data-testid="stuck-error">${p.lastError}</code></dd>` : ''}
  </dl>
</div>`;
}

export function casePage(ctx: PageContext, c: CaseView): string {
  const s = c.state;
  return layout(c.accountId, ctx, html`
<section class="card">
  <h1>Case <span data-testid="account">${c.accountId}</span>
    ${s ? html`<span class="stage stage-${s.stage}" data-testid="stage">${s.stage}</span>` : ''}</h1>
  <p><a href="${c.temporalUrl}" target="_blank" rel="noopener noreferrer" data-testid="temporal-link">Open the workflow in the Temporal Web UI</a></p>
  ${c.problem ? problemBox(c.problem) : ''}
  ${c.stateError ? html`<p class="flash flash-error">Case state unavailable: ${c.stateError}</p>` : ''}
  ${!c.workflow ? html`<p class="empty">No case workflow for this account (only its audit trail below).</p>` : ''}
  ${s
    ? html`<dl class="facts">
  <dt>Workflow</dt><dd>${c.workflow?.status ?? ''}</dd>
  <dt>Alerts</dt><dd data-testid="alert-count">${s.alertCount}</dd>
  <dt>Opened</dt><dd>${fmtTime(s.openedAt)}</dd>
  ${s.closedAt ? html`<dt>Closed</dt><dd>${fmtTime(s.closedAt)} (${s.closedReason ?? ''})</dd>` : ''}
  ${c.latestAlert ? html`<dt>Latest alert</dt><dd>${c.latestAlert.velocity} payments, last ${c.latestAlert.amount} ${c.latestAlert.currency} in ${c.latestAlert.region} at ${fmtTime(c.latestAlert.time)}</dd>` : ''}
</dl>
<h3>Actions</h3>
${s.actions.length === 0
    ? html`<p class="empty">None yet.</p>`
    : html`<ul class="actions">${s.actions.map((a) => html`<li class="${a.status}"><strong>${a.action}</strong> ${a.status === 'done' ? '' : 'FAILED '}<span class="hint">${fmtTime(a.at)}</span> ${a.detail}</li>`)}</ul>`}`
    : ''}
</section>
<div class="cols">
<section class="card grow">
  <h2>Timeline</h2>
  <p class="hint">The audit trail (<code>fraud:audit:account:${c.accountId}</code>): alerts, actions and decisions, newest first.</p>
  ${timeline(c.trail)}
</section>
<div class="side">
<section class="card">
  <h2>Review</h2>
  ${reviewSection(ctx, c)}
</section>
${clearSection(ctx, c)}
</div>
</div>`);
}

export function errorPage(ctx: PageContext, status: number, message: string): string {
  return layout(`Error ${status}`, ctx, html`<section class="card narrow"><h1>${status}</h1><p data-testid="error">${message}</p><p><a href="/">Back to the dashboard</a></p></section>`);
}
