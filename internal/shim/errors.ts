import { Code } from "../ttrpc/codes.ts";
import { TtrpcError } from "../ttrpc/errors.ts";

/**
 * Errors with the gRPC codes containerd maps back to its errdefs (NotFound → ErrNotFound, …):
 * containerd and kubelet branch on these codes (e.g. a NotFound from Kill of an exited process is
 * ignored, AlreadyExists on Create is surfaced as is), so the code matters as much as the text.
 */
export const notFound = (msg: string) => new TtrpcError(Code.NotFound, msg);
export const alreadyExists = (msg: string) => new TtrpcError(Code.AlreadyExists, msg);
export const failedPrecondition = (msg: string) => new TtrpcError(Code.FailedPrecondition, msg);
export const invalidArgument = (msg: string) => new TtrpcError(Code.InvalidArgument, msg);
export const unimplemented = (msg: string) => new TtrpcError(Code.Unimplemented, msg);
export const internal = (msg: string) => new TtrpcError(Code.Internal, msg);
export const unavailable = (msg: string) => new TtrpcError(Code.Unavailable, msg);

/** Prefixes an error's message with what was being done, keeping its code. */
export function wrapError(err: unknown, doing: string): TtrpcError {
  const e = TtrpcError.from(err);
  return new TtrpcError(e.code, `${doing}: ${e.message}`, e.details);
}

export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
