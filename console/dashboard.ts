// The dashboard (stuck cases, review queue + live alerts, which the page's script fills over Socket.IO) and the
// stuck-case and review-queue fragments the page reloads every 15 s.
import type { Client } from '@temporalio/client';
import express, { type Router } from 'express';
import type { Redis } from 'ioredis';
import { listStuckCases, openReviews, type OpenReview, type StuckCases } from '../common/cases.ts';
import { alertKeys } from '../contracts/redis-keys.ts';
import { TEMPORAL_READ_MS, errorText, type Pages } from './requests.ts';
import { dashboardPage, reviewsTable, stuckCasesPanel } from './views.ts';

/** Stuck cases listed on the dashboard at most (the count covers them all). */
const STUCK_SHOWN = 20;

/** GET /, GET /partials/reviews and GET /partials/stuck. */
export function dashboardRoutes(deps: { redis: Redis; temporal: Client; pages: Pages }): Router {
  const { redis, temporal, pages } = deps;
  const router = express.Router();

  // Temporal down: the queue shows the error, the rest of the page works.
  const loadReviews = (): Promise<OpenReview[] | { error: string }> =>
    temporal.withDeadline(Date.now() + TEMPORAL_READ_MS, () => openReviews(temporal)).catch((err: unknown) => ({ error: errorText(err) }));

  // The list from visibility only (no describe per case): the case page has the details. On a server without
  // TemporalReportedProblems the scan that stands in is kept small: this runs on every page's refresh.
  const loadStuck = (): Promise<StuckCases | { error: string }> =>
    temporal.withDeadline(Date.now() + TEMPORAL_READ_MS, () => listStuckCases(temporal, { limit: STUCK_SHOWN, scanLimit: 200 }))
      .catch((err: unknown) => ({ error: errorText(err) }));

  router.get('/', async (req, res) => {
    const [reviews, stuck, flagged] = await Promise.all([loadReviews(), loadStuck(), redis.scard(alertKeys.accounts).catch(() => undefined)]);
    res.send(dashboardPage(pages.page(req, res), { reviews, flagged, stuck }));
  });

  router.get('/partials/reviews', async (_req, res) => {
    res.type('html').send(reviewsTable(await loadReviews()).text);
  });

  router.get('/partials/stuck', async (_req, res) => {
    res.type('html').send(stuckCasesPanel(await loadStuck()).text);
  });

  return router;
}
