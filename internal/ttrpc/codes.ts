/**
 * gRPC status codes, which TTRPC carries unchanged in `google.rpc.Status.code`
 * (containerd/ttrpc imports google.golang.org/grpc/codes).
 */
export const Code = {
  OK: 0,
  Cancelled: 1,
  Unknown: 2,
  InvalidArgument: 3,
  DeadlineExceeded: 4,
  NotFound: 5,
  AlreadyExists: 6,
  PermissionDenied: 7,
  ResourceExhausted: 8,
  FailedPrecondition: 9,
  Aborted: 10,
  OutOfRange: 11,
  Unimplemented: 12,
  Internal: 13,
  Unavailable: 14,
  DataLoss: 15,
  Unauthenticated: 16,
} as const;

export type CodeName = keyof typeof Code;
export type CodeValue = (typeof Code)[CodeName];

const names: readonly string[] = Object.keys(Code);

/** `NotFound` for 5; `Code(42)` for values outside the table (a peer may send anything). */
export function codeName(code: number): string {
  return names[code] ?? `Code(${code})`;
}
