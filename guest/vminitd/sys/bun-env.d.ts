/**
 * The slice of Bun's runtime API vminitd uses. The project type-checks against Node's types only;
 * these declarations keep Bun-specific modules checked without pulling bun-types into every file.
 * Modules that touch them run only under Bun (in the guest, or in tests that spawn Bun).
 */

interface BunSubprocess {
  readonly pid: number;
  readonly exited: Promise<number>;
  readonly exitCode: number | null;
  readonly signalCode: string | null;
  readonly stdout: ReadableStream<Uint8Array> | number | undefined;
  readonly stderr: ReadableStream<Uint8Array> | number | undefined;
  kill(signal?: number | string): void;
}

interface BunSpawnOptions {
  cwd?: string;
  env?: Record<string, string>;
  stdin?: "ignore" | "pipe" | "inherit" | null;
  stdout?: "ignore" | "pipe" | "inherit" | null;
  stderr?: "ignore" | "pipe" | "inherit" | null;
}

declare const Bun: {
  readonly version: string;
  spawn(argv: string[], opts?: BunSpawnOptions): BunSubprocess;
  sleep(ms: number): Promise<void>;
};
