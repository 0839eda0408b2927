// Where sign-in sends the browser afterwards (`safeNext`, console/auth.ts): the `next` parameter comes from the URL,
// so only a path on this console is followed; anything that could leave it (another host, a scheme) becomes `/`.
import { describe, expect, it } from '@jest/globals';
import { safeNext } from '../../console/auth.ts';

const ORIGIN = 'https://console.example';
/** Where a browser on the console goes when it follows `location`. */
const resolved = (location: string) => new URL(location, `${ORIGIN}/login`);

const LOCAL = ['/', '/cases/ACC_1', '/cases/ACC_1?tab=timeline#review', '/partials/reviews', '/cases/a%2Fb', '/%2F%2Fevil.com', '/%5Cevil.com', '/login?next=//evil.com'];
const LEAVING = [
  '//evil.com', '//evil.com/cases', '///evil.com', '/\\evil.com', '/\\/evil.com', '\\\\evil.com', 'https://evil.com', 'http://evil.com/',
  'HTTPS://evil.com', 'javascript:alert(document.cookie)', 'JaVaScRiPt:alert(1)', 'data:text/html,<script>alert(1)</script>',
  'evil.com', 'cases/ACC_1', '%2F%2Fevil.com', '%2Fcases', ' //evil.com', ' /cases', '',
  '/\t/evil.com', '/\n/evil.com', '/\r\n/evil.com', '/cases\u0000', '/\u007f/evil.com',
];

describe('sign-in redirect (safeNext)', () => {
  it('when next is a local path, then it is kept as it is', () => {
    for (const next of LOCAL) expect(safeNext(next)).toBe(next);
  });

  it('when next names another host, a scheme or is not a path, then sign-in goes to /', () => {
    for (const next of LEAVING) expect([next, safeNext(next)]).toStrictEqual([next, '/']);
  });

  it('when next is not a string (absent, repeated, an object from the query parser), then sign-in goes to /', () => {
    for (const next of [undefined, null, 0, 1, true, ['/cases/ACC_1'], ['//evil.com', '/'], { path: '/cases' }, () => '/']) {
      expect(safeNext(next)).toBe('/');
    }
  });

  it('when a browser follows any of these, then it stays on the console', () => {
    for (const next of [...LOCAL, ...LEAVING]) expect([next, resolved(safeNext(next)).origin]).toStrictEqual([next, ORIGIN]);
  });

  it('when encoded slashes are in a local path, then they stay encoded (a path segment, not a host)', () => {
    expect(resolved(safeNext('/%2F%2Fevil.com')).pathname).toBe('/%2F%2Fevil.com');
    expect(resolved(safeNext(decodeURIComponent('%2F%2Fevil.com'))).href).toBe(`${ORIGIN}/`);
  });
});
