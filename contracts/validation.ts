// Parsing at trust boundaries: a zod schema's verdict as the value, or the first problem in words naming the field.
// Workflow-safe.
import type { z } from 'zod';

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

export function parseWith<S extends z.ZodType>(schema: S, value: unknown): Parsed<z.output<S>> {
  let r: z.ZodSafeParseResult<z.output<S>>;
  try {
    r = schema.safeParse(value);
  } catch (err) {
    // zod itself can throw on hostile values (a field {"length": {"toString": 1}} reaching a string check): the input
    // is refused like any other that does not parse, never thrown at the caller (a workflow task would fail).
    return { ok: false, reason: `input could not be checked: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (r.success) return { ok: true, value: r.data };
  const issue = r.error.issues[0]!;
  const field = issue.path.join('.');
  return { ok: false, reason: field ? `${field}: ${issue.message}` : issue.message };
}
