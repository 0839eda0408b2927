// The console's pages (console/views.ts) rendered from hostile data: account ids, notes, audit details, alert fields,
// flash messages and error texts come from outside. Each page is rendered twice, once with plain values and once with
// markup in every field that takes text; the two must have the same tags and attributes (the data added none), and
// the hostile values must show as text.
import { describe, expect, it } from '@jest/globals';
import type { OpenReview, StuckCases } from '../../common/cases.ts';
import type { AuditEntry } from '../../contracts/audit.ts';
import type { CaseState } from '../../contracts/case.ts';
import type { User } from '../../console/users.ts';
import { casePage, dashboardPage, errorPage, loginPage, reviewsTable, stuckCasesPanel, type CaseView, type PageContext } from '../../console/views.ts';

const EVIL = `<img src=x onerror="alert(1)"><script>alert('x')</script>&lt;b&gt;\`${'${document.cookie}'}`;
const hostile = (field: string) => `${field}${EVIL}`;
const plain = (field: string) => `${field}-plain`;
type Values = (field: string) => string;

/** Tag names with their attribute names, in document order: the markup, without the data in it. */
function structure(page: string): string[] {
  return [...page.matchAll(/<(\/?[a-zA-Z][a-zA-Z0-9]*)([^>]*)>/g)].map(([, tag, attrs]) =>
    [tag, ...[...attrs!.matchAll(/\s([^\s="]+)(?:="[^"]*")?/g)].map((m) => m[1])].join(' '));
}

const ENTITIES: Record<string, string> = { '&lt;': '<', '&gt;': '>', '&quot;': '"', '&#39;': "'", '&#96;': '`', '&amp;': '&' };
const decode = (s: string) => s.replace(/&(?:lt|gt|quot|#39|#96|amp);/g, (e) => ENTITIES[e]!);
/** What a reader sees: the text between tags and the attribute values, entities decoded. */
function shown(page: string): string {
  const attrs = [...page.matchAll(/="([^"]*)"/g)].map((m) => m[1]);
  return decode([page.replace(/<[^>]*>/g, ''), ...attrs].join('\n'));
}

/** The page has no markup of the data's making: same structure as the plain page, no raw tag or quote from EVIL. */
function expectEscaped(hostilePage: string, plainPage: string, values: string[]): void {
  expect(structure(hostilePage)).toStrictEqual(structure(plainPage));
  expect(hostilePage).not.toMatch(/<img|<script>alert|onerror="|`/);
  const seen = shown(hostilePage);
  for (const v of values) expect(seen).toContain(v);
}

const user = (v: Values, role: User['role']): User => ({ name: v('user'), role, createdAt: '2026-06-01T12:00:00.000Z' });
const ctx = (v: Values, role: User['role'] = 'analyst'): PageContext => ({ user: user(v, role), csrfToken: v('csrf'), flash: { kind: 'error', text: v('flash') } });

const NOW = Date.parse('2026-06-01T12:00:00Z');
const iso = (minutesFromNow: number) => new Date(NOW + minutesFromNow * 60_000).toISOString();

function trail(v: Values): AuditEntry[] {
  return [
    { id: 'c#1', accountId: v('account'), caseId: 'c', at: iso(-30), type: 'alert', actor: v('actor'), detail: v('alert detail'), data: {} },
    { id: 'c#2', accountId: v('account'), caseId: 'c', at: iso(-20), type: v('type') as AuditEntry['type'], actor: 'system', detail: v('stage detail'), data: {} },
  ];
}

function state(v: Values, decided: boolean): CaseState {
  return {
    accountId: v('account'), caseId: 'c', openedAt: iso(-30), stage: 'MANUAL_REVIEW', alertCount: 4, alertIds: [],
    review: {
      taskId: v('task'), priority: v('priority') as 'HIGH', openedAt: iso(-20), dueAt: iso(200),
      ...(decided ? { decision: { decision: 'FALSE_POSITIVE' as const, analystId: v('analyst'), note: v('note'), decidedAt: iso(-1) } } : {}),
    },
    actions: [{ action: 'MANUAL_REVIEW', status: 'failed', at: iso(-20), detail: v('action detail') }],
    closedAt: iso(-1), closedReason: v('closed reason'),
  };
}

function caseView(v: Values, decided: boolean): CaseView {
  return {
    accountId: v('account'),
    workflow: { status: 'RUNNING', runId: v('run') },
    state: state(v, decided),
    stateError: v('state error'),
    trail: trail(v),
    latestAlert: { alert_id: v('alert'), account: v('account'), velocity: 4, amount: 12.5, currency: v('currency'), region: v('region'), time: iso(-2), detected_at: iso(-2) },
    temporalUrl: 'http://127.0.0.1:8233/namespaces/default/workflows/fraud-account-x',
  };
}

const CASE_TEXT = ['account', 'actor', 'alert detail', 'stage detail', 'task', 'action detail', 'closed reason', 'state error', 'currency', 'region', 'user', 'flash'];

describe('case page with hostile data', () => {
  it('when an ops user opens an undecided case, then the review and clear forms show every value as text only', () => {
    const page = casePage(ctx(hostile, 'ops'), caseView(hostile, false));
    expectEscaped(page, casePage(ctx(plain, 'ops'), caseView(plain, false)), [...CASE_TEXT, 'csrf', 'priority', 'type'].map(hostile));
    expect(page).toContain('data-testid="review-form"');
    expect(page).toContain('data-testid="clear-form"');
  });

  it('when the review is decided, then the analyst id and the note show as text only', () => {
    const page = casePage(ctx(hostile, 'viewer'), caseView(hostile, true));
    expectEscaped(page, casePage(ctx(plain, 'viewer'), caseView(plain, true)), [...CASE_TEXT, 'analyst', 'note'].map(hostile));
    expect(page).toContain('data-testid="decision"');
  });

  it('when the case page links its forms, then a hostile account id stays inside its /cases/ path', () => {
    const page = casePage(ctx(hostile, 'ops'), caseView(hostile, false));
    const actions = [...page.matchAll(/<form method="post" action="([^"]*)"/g)].map((m) => decode(m[1]!));
    expect(actions).toStrictEqual(['/logout', `/cases/${encodeURIComponent(hostile('account'))}/review`, `/cases/${encodeURIComponent(hostile('account'))}/clear`]);
  });
});

function reviews(v: Values): OpenReview[] {
  return [1, 2].map((n) => ({
    accountId: v(`account ${n}`), workflowId: `fraud-account-${n}`, stage: v('stage'), alertCount: 4,
    taskId: v('task'), priority: v('priority') as 'HIGH', openedAt: iso(-5), dueAt: iso(n === 1 ? -3 : 90),
  }));
}

describe('review queue with hostile data', () => {
  it('when accounts, stages and priorities hold markup, then the table shows them as text only', () => {
    const table = reviewsTable(reviews(hostile), NOW).text;
    expectEscaped(table, reviewsTable(reviews(plain), NOW).text, ['account 1', 'account 2', 'stage', 'priority'].map(hostile));
    expect(table).toContain('overdue 3m');
  });

  it('when an account id is a javascript: URL or a path, then its link still goes to its case page', () => {
    const links = (ids: string[]) => [...reviewsTable(ids.map((accountId) => ({ ...reviews(plain)[0]!, accountId })), NOW).text.matchAll(/href="([^"]*)"/g)]
      .map((m) => decode(m[1]!));
    const ids = ['javascript:alert(1)', '//evil.com', '../../login', hostile('account')];
    expect(links(ids)).toStrictEqual(ids.map((id) => `/cases/${encodeURIComponent(id)}`));
  });

  it('when the queue is unavailable with a hostile error, then the error shows as text only', () => {
    expectEscaped(reviewsTable({ error: hostile('error') }).text, reviewsTable({ error: plain('error') }).text, [hostile('error')]);
  });
});

function stuck(v: Values, total = 3): StuckCases {
  return {
    via: 'reported-problems', total,
    cases: [1, 2].map((n) => ({
      accountId: v(`stuck account ${n}`), workflowId: `fraud-account-${n}`, runId: v('run'), stage: v('stage'), alertCount: 5,
      problem: { category: v('category'), cause: v('cause') },
    })),
  };
}

describe('stuck cases with hostile data', () => {
  it('when stuck cases carry markup in their fields, then the panel shows the count and every field as text only', () => {
    const panel = stuckCasesPanel(stuck(hostile)).text;
    expectEscaped(panel, stuckCasesPanel(stuck(plain)).text, ['stuck account 1', 'stuck account 2', 'stage', 'category', 'cause'].map(hostile));
    expect(panel).toMatch(/data-testid="stuck-count" data-count="3">3</);
    expect(panel).toContain('(the first 2 shown)');
  });

  it('when an account id is a javascript: URL or a path, then its link still goes to its case page', () => {
    const ids = ['javascript:alert(1)', '//evil.com', '../../login', hostile('account')];
    const list: StuckCases = { via: 'reported-problems', total: ids.length, cases: ids.map((accountId) => ({ ...stuck(plain).cases[0]!, accountId })) };
    const links = [...stuckCasesPanel(list).text.matchAll(/href="([^"]*)"/g)].map((m) => decode(m[1]!));
    expect(links).toStrictEqual(ids.map((id) => `/cases/${encodeURIComponent(id)}`));
  });

  it('when there are none, or the list fails with a hostile error, then the panel says so as text only', () => {
    expect(stuckCasesPanel({ via: 'scan', total: 0, cases: [], scanned: 12, complete: true }).text).toMatch(/No stuck cases\..*12 running cases/s);
    expectEscaped(stuckCasesPanel({ error: hostile('error') }).text, stuckCasesPanel({ error: plain('error') }).text, [hostile('error')]);
  });

  it('when a case page shows a stuck case, then its problem and last error show as text only', () => {
    const view = (v: Values): CaseView => ({
      ...caseView(v, false), state: undefined,
      problem: { category: v('category'), cause: v('cause'), attempt: 4, since: iso(-7), lastError: v('last error') },
    });
    const page = casePage(ctx(hostile, 'ops'), view(hostile));
    expectEscaped(page, casePage(ctx(plain, 'ops'), view(plain)), ['category', 'cause', 'last error', 'account'].map(hostile));
    expect(page).toContain('data-testid="stuck"');
  });
});

describe('other pages with hostile data', () => {
  it('when the dashboard embeds the queue, then the queue and the header stay escaped', () => {
    const page = (v: Values) => dashboardPage(ctx(v), { reviews: reviews(v), flagged: 3, stuck: stuck(v) });
    expectEscaped(page(hostile), page(plain), ['account 1', 'user', 'flash', 'csrf', 'stuck account 1'].map(hostile));
  });

  it('when sign-in fails for a hostile user name and next, then the form echoes them as attribute values only', () => {
    const page = (v: Values) => loginPage({ csrfToken: v('csrf') }, { error: v('error'), next: v('next'), username: v('username') });
    expectEscaped(page(hostile), page(plain), ['error', 'next', 'username', 'csrf'].map(hostile));
  });

  it('when an error page shows a hostile message, then it is text only', () => {
    const page = (v: Values) => errorPage(ctx(v), 400, v('message'));
    expectEscaped(page(hostile), page(plain), ['message', 'user'].map(hostile));
  });
});
