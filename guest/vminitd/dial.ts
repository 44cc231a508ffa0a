/**
 * Dialling the host with a bound: vhost-device-vsock answers a connect to a port nobody listens on
 * with a reset, and the host may still be setting up its listener while the guest boots, so the
 * guest retries with a short, growing delay until the deadline.
 */
import { errorMessage, type Logger } from "./log.ts";

export interface DialPolicy {
  /** Total time to keep trying, from the first attempt. */
  readonly timeoutMs: number;
  readonly firstDelayMs?: number;
  readonly maxDelayMs?: number;
}

export interface Clock {
  now(): number;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
};

export class DialTimeoutError extends Error {
  constructor(
    readonly attempts: number,
    readonly elapsedMs: number,
    readonly lastError: string,
  ) {
    super(`host unreachable after ${attempts} attempts in ${elapsedMs} ms (last error: ${lastError})`);
    this.name = "DialTimeoutError";
  }
}

export async function dialWithRetry<T>(
  attempt: () => T | Promise<T>,
  policy: DialPolicy,
  clock: Clock,
  log: Logger,
  shouldStop: () => boolean = () => false,
): Promise<T> {
  const start = clock.now();
  let delay = policy.firstDelayMs ?? 10;
  const maxDelay = policy.maxDelayMs ?? 250;
  let attempts = 0;
  let lastError = "";
  for (;;) {
    attempts++;
    try {
      const result = await attempt();
      if (attempts > 1) log.debug("host dial succeeded", { attempts, elapsed_ms: clock.now() - start });
      return result;
    } catch (err) {
      lastError = errorMessage(err);
    }
    const elapsed = clock.now() - start;
    if (shouldStop() || elapsed + delay > policy.timeoutMs)
      throw new DialTimeoutError(attempts, elapsed, lastError);
    if (attempts === 1 || attempts % 20 === 0)
      log.debug("host not reachable yet", { attempts, error: lastError });
    await clock.sleep(delay);
    delay = Math.min(delay * 2, maxDelay);
  }
}
