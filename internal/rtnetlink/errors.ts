/**
 * Errors of the network layer. Each carries the gRPC code name the shim should answer
 * containerd with (see internal/ttrpc/codes.ts), so a bad request becomes InvalidArgument and a
 * missing host capability FailedPrecondition without the shim parsing messages.
 */
export type NetworkErrorCode =
  | "InvalidArgument"
  | "NotFound"
  | "AlreadyExists"
  | "FailedPrecondition"
  | "ResourceExhausted"
  | "Unavailable"
  | "Internal";

export class NetworkError extends Error {
  constructor(
    readonly code: NetworkErrorCode,
    message: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "NetworkError";
  }
}

export function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
