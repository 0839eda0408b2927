// The dashboard (review queue + live alerts, which the page's script fills over Socket.IO) and the review-queue
// fragment the page reloads every 15 s.
import type { Client } from '@temporalio/client';
import express, { type Router } from 'express';
import type { Redis } from 'ioredis';
import { openReviews, type OpenReview } from '../common/cases.ts';
import { alertKeys } from '../contracts/redis-keys.ts';
import { TEMPORAL_READ_MS, errorText, type Pages } from './requests.ts';
import { dashboardPage, reviewsTable } from './views.ts';

/** GET / and GET /partials/reviews. */
export function dashboardRoutes(deps: { redis: Redis; temporal: Client; pages: Pages }): Router {
  const { redis, temporal, pages } = deps;
  const router = express.Router();

  // Temporal down: the queue shows the error, the rest of the page works.
  const loadReviews = (): Promise<OpenReview[] | { error: string }> =>
    temporal.withDeadline(Date.now() + TEMPORAL_READ_MS, () => openReviews(temporal)).catch((err: unknown) => ({ error: errorText(err) }));

  router.get('/', async (req, res) => {
    const [reviews, flagged] = await Promise.all([loadReviews(), redis.scard(alertKeys.accounts).catch(() => undefined)]);
    res.send(dashboardPage(pages.page(req, res), { reviews, flagged }));
  });

  router.get('/partials/reviews', async (_req, res) => {
    res.type('html').send(reviewsTable(await loadReviews()).text);
  });

  return router;
}
