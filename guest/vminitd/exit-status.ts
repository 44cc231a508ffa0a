/** Decoding of waitpid(2) statuses into what containerd reports. */

export interface ExitInfo {
  /** The exit code, or 128 + signal number when a signal killed the process (shell convention). */
  readonly exitCode: number;
  /** The terminating signal, or null for a normal exit. */
  readonly signal: number | null;
  readonly coreDumped: boolean;
}

export function decodeWaitStatus(status: number): ExitInfo {
  const low = status & 0x7f;
  if (low === 0) return { exitCode: (status >> 8) & 0xff, signal: null, coreDumped: false };
  if (low === 0x7f) {
    // WIFSTOPPED: only reported with WUNTRACED, which vminitd never asks for.
    throw new Error(`wait status 0x${status.toString(16)} is a stop, not an exit`);
  }
  return { exitCode: 128 + low, signal: low, coreDumped: (status & 0x80) !== 0 };
}
