// Waiting for asynchronous effects in tests: poll a condition, bounded, never sleep-then-assert.
// A test that sleeps and then asserts that something happened fails whenever the machine is slower
// than the sleep (a shared 2-core machine under load often is); one that waits for the condition
// only takes longer. The bound turns a condition that never comes into a failure that names it.

/** Polls check() until it returns something truthy and returns that; throws after timeoutMs. */
export async function eventually<T>(check: () => T | Promise<T>, what: string, timeoutMs = 10_000): Promise<NonNullable<T>> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v) return v as NonNullable<T>;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await Bun.sleep(10);
  }
}
