// What changes a case from its page, each behind a role: deciding its review (the workflow's completeReview update,
// whose validator rejects a stale or decided task) and clearing the account (the clearAccount signal). Both answer
// with a redirect back to the case page and a flash message saying what happened.
import { WorkflowNotFoundError } from '@temporalio/common';
import { WorkflowUpdateFailedError, WorkflowUpdateStage, type Client } from '@temporalio/client';
import express, { type Router } from 'express';
import { z } from 'zod';
import type { Logger } from '../common/logger.ts';
import { DECISIONS, caseWorkflowId, clearAccountSignal, completeReviewUpdate } from '../contracts/case.ts';
import { parseWith } from '../contracts/validation.ts';
import type { RequireRole } from './auth.ts';
import { accountParam, errorText, userOf, type Pages } from './requests.ts';
import { caseHref, type Flash } from './views.ts';

/** Deadline for a decision to pass the workflow's validator (a busy worker may take a while to pick it up). */
const TEMPORAL_UPDATE_MS = 15_000;

const reviewForm = z.object({
  taskId: z.string().min(1).max(200),
  decision: z.enum(DECISIONS, { error: `choose a decision (${DECISIONS.join(' or ')})` }),
  note: z.string().max(500, 'the note is limited to 500 characters').optional().default(''),
});

const clearForm = z.object({ reason: z.string().trim().min(1, 'give a reason').max(500, 'the reason is limited to 500 characters') });

// parseWith, not safeParse: a form field a body parser turned into an object ({"length": {"toString": "1"}}) can make
// zod itself throw; it is refused like any other bad field.
const notSent = (reason: string): Flash => ({ kind: 'error', text: `Not sent: ${reason}` });

export interface CaseActionDeps {
  log: Logger;
  temporal: Client;
  pages: Pages;
  requireRole: RequireRole;
}

/** POST /cases/:account/review (analyst, ops) and POST /cases/:account/clear (ops). */
export function caseActionRoutes(deps: CaseActionDeps): Router {
  const { log, temporal, pages, requireRole } = deps;
  const router = express.Router();

  router.post('/cases/:account/review', requireRole('decide', 'decide reviews'), async (req, res) => {
    const accountId = accountParam(req.params.account);
    const user = userOf(res)!;
    const form = parseWith(reviewForm, req.body);
    if (!form.ok) return pages.flashAndBack(req, res, caseHref(accountId), notSent(form.reason));
    const request = { taskId: form.value.taskId, decision: form.value.decision, analystId: user.name, note: form.value.note.trim() };
    const handle = temporal.workflow.getHandle(caseWorkflowId(accountId));
    let flash: Flash;
    try {
      // Accepted means the workflow's validator passed; a rejection (unknown or decided task, closed case) throws here.
      const update = await temporal.withDeadline(Date.now() + TEMPORAL_UPDATE_MS, () =>
        handle.startUpdate(completeReviewUpdate, { args: [request], waitForStage: WorkflowUpdateStage.ACCEPTED }),
      );
      try {
        const result = await temporal.withDeadline(Date.now() + 20_000, () => update.result());
        flash = { kind: 'ok', text: `Review ${request.taskId}: ${result.decision} by ${user.name}. The case is now ${result.stage}.` };
      } catch (err) {
        if (err instanceof WorkflowUpdateFailedError) throw err;
        flash = { kind: 'ok', text: `Review ${request.taskId}: ${request.decision} by ${user.name} was accepted and is still being applied (${errorText(err)}). Reload in a moment.` };
      }
      log.info({ user: user.name, accountId, taskId: request.taskId, decision: request.decision }, 'review decided');
    } catch (err) {
      if (err instanceof WorkflowUpdateFailedError) {
        flash = { kind: 'error', text: `Rejected by the case: ${(err.cause as Error | undefined)?.message ?? err.message}` };
      } else if (err instanceof WorkflowNotFoundError) {
        flash = { kind: 'error', text: `No running case for ${accountId}.` };
      } else {
        log.error({ err: errorText(err), accountId }, 'review update failed');
        flash = { kind: 'error', text: `Could not reach the case: ${errorText(err)}` };
      }
    }
    pages.flashAndBack(req, res, caseHref(accountId), flash);
  });

  router.post('/cases/:account/clear', requireRole('clear', 'clear accounts'), async (req, res) => {
    const accountId = accountParam(req.params.account);
    const user = userOf(res)!;
    const form = parseWith(clearForm, req.body);
    if (!form.ok) return pages.flashAndBack(req, res, caseHref(accountId), notSent(form.reason));
    try {
      await temporal.withDeadline(Date.now() + TEMPORAL_UPDATE_MS, () =>
        temporal.workflow.getHandle(caseWorkflowId(accountId)).signal(clearAccountSignal, { by: user.name, reason: form.value.reason }),
      );
      log.info({ user: user.name, accountId, reason: form.value.reason }, 'clearAccount sent');
      pages.flashAndBack(req, res, caseHref(accountId), { kind: 'ok', text: `clearAccount sent by ${user.name}: the case closes once the worker has cleared the account.` });
    } catch (err) {
      const text = err instanceof WorkflowNotFoundError ? `No running case for ${accountId}.` : `Could not reach the case: ${errorText(err)}`;
      pages.flashAndBack(req, res, caseHref(accountId), { kind: 'error', text });
    }
  });

  return router;
}
