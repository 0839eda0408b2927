// Parsing at trust boundaries: a zod schema's verdict as the value, or the first problem in words naming the field.
// Workflow-safe.
import type { z } from 'zod';

export type Parsed<T> = { ok: true; value: T } | { ok: false; reason: string };

export function parseWith<S extends z.ZodType>(schema: S, value: unknown): Parsed<z.output<S>> {
  const r = schema.safeParse(value);
  if (r.success) return { ok: true, value: r.data };
  const issue = r.error.issues[0]!;
  const field = issue.path.join('.');
  return { ok: false, reason: field ? `${field}: ${issue.message}` : issue.message };
}
