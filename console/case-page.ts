// A case page: the workflow's state (query), its audit trail, the latest alert and a link to the Temporal Web UI; for a
// stuck case (its workflow task keeps failing) the problem and the last error instead of the state. The page still
// shows the trail while Temporal is down (with the error), and is a 404 only when there is nothing at all.
import { WorkflowNotFoundError } from '@temporalio/common';
import type { Client } from '@temporalio/client';
import express, { type Router } from 'express';
import type { Redis } from 'ioredis';
import type { AuditLog } from '../common/audit-log.ts';
import { lastTaskFailure, reportedByServer, taskProblemOf } from '../common/cases.ts';
import type { ConsoleConfig } from '../common/config.ts';
import { caseStateQuery, caseWorkflowId } from '../contracts/case.ts';
import { alertKeys } from '../contracts/redis-keys.ts';
import { toView } from './alerts.ts';
import { TEMPORAL_READ_MS, accountParam, errorText, type Pages } from './requests.ts';
import { caseHref, casePage, errorPage, type CaseView } from './views.ts';

export interface CasePageDeps {
  config: ConsoleConfig;
  redis: Redis;
  temporal: Client;
  audit: AuditLog;
  pages: Pages;
}

/** GET /cases?account=ID (the header's "Open case" form) and GET /cases/:account. */
export function casePageRoutes(deps: CasePageDeps): Router {
  const { config, redis, temporal, audit, pages } = deps;
  const router = express.Router();

  router.get('/cases', (req, res) => {
    res.redirect(303, caseHref(accountParam(typeof req.query.account === 'string' ? req.query.account.trim() : undefined)));
  });

  const loadCase = async (accountId: string): Promise<CaseView> => {
    const handle = temporal.workflow.getHandle(caseWorkflowId(accountId));
    const temporalUrl = `${config.TEMPORAL_UI_URL}/namespaces/${encodeURIComponent(config.TEMPORAL_NAMESPACE)}/workflows/${encodeURIComponent(caseWorkflowId(accountId))}`;
    const [trail, latest, described] = await Promise.all([
      audit.forAccount(accountId),
      redis.get(alertKeys.sender(accountId)),
      temporal.withDeadline(Date.now() + TEMPORAL_READ_MS, () => handle.describe()).then(
        (d) => ({ workflow: { status: d.status.name, runId: d.runId }, problem: taskProblemOf(d) }),
        (err: unknown) => (err instanceof WorkflowNotFoundError ? {} : { error: errorText(err) }),
      ),
    ]);
    const view: CaseView = { accountId, trail, temporalUrl, latestAlert: latest ? toView(latest) : undefined };
    if ('error' in described) view.stateError = described.error;
    if ('workflow' in described && described.problem) {
      view.problem = described.problem;
      const last = await temporal.withDeadline(Date.now() + TEMPORAL_READ_MS, () => lastTaskFailure(temporal, caseWorkflowId(accountId), described.workflow.runId))
        .catch(() => undefined);
      if (last) Object.assign(view.problem, { lastError: last.message }, last.since ? { since: last.since } : {});
    }
    if ('workflow' in described && view.problem && reportedByServer(view.problem)) {
      // Stuck: a query would only wait for a workflow task that keeps failing. The history says why instead.
      view.workflow = described.workflow;
      view.stateError = 'not queried: the case is stuck (its workflow task keeps failing), so it answers no query';
    } else if ('workflow' in described) {
      view.workflow = described.workflow;
      try {
        view.state = await temporal.withDeadline(Date.now() + TEMPORAL_READ_MS, () => handle.query(caseStateQuery));
      } catch (err) {
        view.stateError = errorText(err);
      }
    }
    return view;
  };

  router.get('/cases/:account', async (req, res) => {
    const view = await loadCase(accountParam(req.params.account));
    if (!view.workflow && !view.stateError && view.trail.length === 0) {
      return res.status(404).send(errorPage(pages.page(req, res), 404, `No case and no audit trail for ${view.accountId}.`));
    }
    res.send(casePage(pages.page(req, res), view));
  });

  return router;
}
