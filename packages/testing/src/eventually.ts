/**
 * Waits on state with a deadline, never a fixed sleep: calls `fn` until it stops throwing (its
 * value is returned) or `timeoutMs` passes (the last failure is reported).
 */
export async function eventually<T>(
  fn: () => T | Promise<T>,
  options: { timeoutMs?: number; intervalMs?: number; what?: string } = {},
): Promise<T> {
  const timeoutMs = options.timeoutMs ?? 15_000;
  const intervalMs = options.intervalMs ?? 100;
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      return await fn();
    } catch (err) {
      last = err;
    }
    if (Date.now() >= deadline) {
      const why = last instanceof Error ? last.message : String(last);
      throw new Error(
        `eventually: ${options.what ?? 'condition'} did not hold within ${timeoutMs} ms; last failure: ${why}`,
      );
    }
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
