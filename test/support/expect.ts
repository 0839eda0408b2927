// jest's expect has no message argument: `expectWith(context, () => expect(...)...)` puts the context (a command's
// output, the values compared) in front of the failure.
export function expectWith(context: string | undefined, check: () => void): void {
  try {
    check();
  } catch (err) {
    if (err instanceof Error && context) err.message = `${context}\n\n${err.message}`;
    throw err;
  }
}
