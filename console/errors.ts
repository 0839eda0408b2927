// The end of the chain: a 404 page for what no route took, and one error handler that turns what was thrown into a
// page: HttpError with its status, an invalid CSRF token as 403, other 4xx with their message, anything else as a 500
// whose details go to the log only.
import type { ErrorRequestHandler, RequestHandler } from 'express';
import type { CsrfTokenGenerator } from 'csrf-sync';
import type { Logger } from '../common/logger.ts';
import { HttpError, userOf, type Pages } from './requests.ts';
import { errorPage, type PageContext } from './views.ts';

export function notFound(pages: Pages): RequestHandler {
  return (req, res) => {
    res.status(404).send(errorPage(pages.page(req, res), 404, 'No such page.'));
  };
}

export function errorHandler(deps: { log: Logger; generateToken: CsrfTokenGenerator }): ErrorRequestHandler {
  const { log, generateToken } = deps;
  return (err: unknown, req, res, _next) => {
    const e = err as { status?: number; code?: string; message?: string };
    const status = err instanceof HttpError ? err.status : e.code === 'EBADCSRFTOKEN' ? 403 : typeof e.status === 'number' && e.status < 500 ? e.status : 500;
    const message = e.code === 'EBADCSRFTOKEN' ? 'The form has expired or did not come from this console (invalid CSRF token). Reload the page and try again.'
      : status < 500 ? (e.message ?? 'bad request') : 'Something went wrong; the console log has the details.';
    if (status >= 500) log.error({ err, path: req.path }, 'request failed');
    if (res.headersSent) return;
    // Not pages.page(): the flash stays for the next page. No token without a signed-in user (making one writes the
    // session); an error before the session middleware has no session either.
    const user = userOf(res);
    const ctx: PageContext = { user, csrfToken: user && req.session ? generateToken(req) : '' };
    res.status(status).send(errorPage(ctx, status, message));
  };
}
