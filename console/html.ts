// HTML by tagged template: every interpolated value is escaped unless it is itself the output of `html` (or an array
// of such). Account ids, alert fields, audit details and notes come from outside; none of them reaches a page raw.

const SAFE = Symbol('safe html');

export interface Html {
  readonly [SAFE]: true;
  readonly text: string;
}

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;', '`': '&#96;' };

export const escapeHtml = (s: string) => s.replace(/[&<>"'`]/g, (c) => ESCAPES[c]!);

const isHtml = (v: unknown): v is Html => typeof v === 'object' && v !== null && SAFE in v;

type Value = Html | string | number | boolean | null | undefined | readonly Value[];

function render(v: Value): string {
  if (v === null || v === undefined || v === false) return '';
  if (Array.isArray(v)) return v.map(render).join('');
  if (isHtml(v)) return v.text;
  return escapeHtml(String(v));
}

export function html(strings: TemplateStringsArray, ...values: Value[]): Html {
  let text = strings[0]!;
  for (let i = 0; i < values.length; i++) text += render(values[i]) + strings[i + 1]!;
  return { [SAFE]: true, text };
}

/** Trusted markup written in this code base (never data). */
export const raw = (text: string): Html => ({ [SAFE]: true, text });
