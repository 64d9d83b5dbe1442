/**
 * Runs `check` every `intervalMs` until it answers true; after `timeoutMs` throws an error
 * with `describe()`'s account of the last state seen.
 */
export async function waitUntil(check: () => Promise<boolean>, timeoutMs: number, describe: () => string, intervalMs = 100): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > until) throw new Error(describe());
    await new Promise((r) => setTimeout(r, intervalMs));
  }
}
