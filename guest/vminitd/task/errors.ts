/** Task service failures with the gRPC code the host maps them to (see internal/ttrpc codes). */
import { Code, TtrpcError } from "../../../internal/ttrpc/index.ts";

export const invalidArgument = (msg: string) => new TtrpcError(Code.InvalidArgument, msg);
export const notFound = (msg: string) => new TtrpcError(Code.NotFound, msg);
export const alreadyExists = (msg: string) => new TtrpcError(Code.AlreadyExists, msg);
export const failedPrecondition = (msg: string) => new TtrpcError(Code.FailedPrecondition, msg);
export const internal = (msg: string) => new TtrpcError(Code.Internal, msg);
export const unimplemented = (msg: string) => new TtrpcError(Code.Unimplemented, msg);
