import type { Any } from "@bufbuild/protobuf/wkt";
import { Code, codeName } from "./codes.ts";

/**
 * A call that ended with a non-OK status: either received from the peer (code, message and details
 * exactly as sent) or produced locally (deadline, cancellation, connection loss, limits).
 * `message` is the status message alone, so it round-trips unchanged; `toString()` adds the code.
 */
export class TtrpcError extends Error {
  readonly code: number;
  readonly details: Any[];

  constructor(code: number, message: string, details: Any[] = []) {
    super(message);
    this.name = "TtrpcError";
    this.code = code;
    this.details = details;
  }

  override toString(): string {
    return `TtrpcError: ${codeName(this.code)}: ${this.message}`;
  }

  /**
   * The status a handler failure is reported with: a TtrpcError keeps its code, an AbortError from
   * the call's own signal keeps the abort reason, anything else becomes Internal with its message.
   */
  static from(err: unknown, fallback: number = Code.Internal): TtrpcError {
    if (err instanceof TtrpcError) return err;
    if (err instanceof Error) return new TtrpcError(fallback, err.message || err.name);
    return new TtrpcError(fallback, String(err));
  }
}

export function isTtrpcError(err: unknown, code?: number): err is TtrpcError {
  return err instanceof TtrpcError && (code === undefined || err.code === code);
}
