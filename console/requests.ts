// What the console's route modules share: the signed-in user of a request, account ids from the URL, errors with an
// HTTP status, the context every page is rendered with (user, CSRF token, the flash message) and the deadline of
// Temporal reads.
import type { Request, Response } from 'express';
import type { CsrfTokenGenerator } from 'csrf-sync';
import type { User } from './users.ts';
import type { Flash, PageContext } from './views.ts';

/** Deadline of the Temporal reads behind a page (the page shows the error instead of hanging when Temporal is down). */
export const TEMPORAL_READ_MS = 5_000;

/** An error the error handler answers with its status and message (a 4xx the user can act on). */
export class HttpError extends Error {
  override name = 'HttpError';
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

/** The signed-in user (set by the sign-in middleware from the session). */
export const userOf = (res: Response) => res.locals.user as User | undefined;

export const errorText = (err: unknown) => (err instanceof Error ? err.message : String(err));

const ACCOUNT_ID = /^[A-Za-z0-9_.:@-]{1,128}$/;

/** An account id from the URL or a form, or a 400. */
export function accountParam(value: unknown): string {
  if (typeof value !== 'string' || !ACCOUNT_ID.test(value)) throw new HttpError(400, 'not an account id: letters, digits and _ . : @ - only, up to 128');
  return value;
}

export interface Pages {
  /**
   * The context of a page for this request; takes the flash message out of the session (it shows once). Only a
   * signed-in request gets a CSRF token: making one writes the session, and an anonymous request must write nothing.
   */
  page(req: Request, res: Response): PageContext;
  /** Post/redirect/get: keep `flash` for the next page and redirect (303) to `to`. */
  flashAndBack(req: Request, res: Response, to: string, flash: Flash): void;
}

export function pages(generateToken: CsrfTokenGenerator): Pages {
  return {
    page(req, res) {
      const user = userOf(res);
      if (!user) return { csrfToken: '' };
      const flash = req.session.flash;
      if (flash) delete req.session.flash;
      return { user, csrfToken: generateToken(req), flash };
    },
    flashAndBack(req, res, to, flash) {
      req.session.flash = flash;
      res.redirect(303, to);
    },
  };
}
