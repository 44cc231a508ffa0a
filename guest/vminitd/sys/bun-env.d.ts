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

type BunStdio = "ignore" | "pipe" | "inherit" | number | null;

interface BunSpawnOptions {
  cwd?: string;
  env?: Record<string, string>;
  stdin?: BunStdio;
  stdout?: BunStdio;
  stderr?: BunStdio;
  /** fds 0-2 of the child: a number is one of ours it inherits. */
  stdio?: BunStdio[];
}

/** Bun's native socket (Bun.connect); `write` returns the bytes the kernel took, -1 when closed. */
interface BunSocket {
  write(data: Uint8Array): number;
  /** Sends FIN; the socket stays readable (end() would close it both ways). */
  shutdown(): void;
  terminate(): void;
  pause(): void;
  resume(): void;
}

interface BunSocketHandlers {
  data?(socket: BunSocket, chunk: Uint8Array): void;
  drain?(socket: BunSocket): void;
  end?(socket: BunSocket): void;
  error?(socket: BunSocket, err: Error): void;
  close?(socket: BunSocket, err?: Error): void;
}

declare const Bun: {
  connect(opts: { fd: number; socket: BunSocketHandlers }): Promise<BunSocket>;
  readonly version: string;
  spawn(argv: string[], opts?: BunSpawnOptions): BunSubprocess;
  sleep(ms: number): Promise<void>;
};
