/**
 * The slice of Bun's runtime API vminitd uses. The project type-checks against Node's types only;
 * these declarations keep Bun-specific modules checked without pulling bun-types into every file.
 * Modules that touch them run only under Bun (in the guest, or in tests that spawn Bun).
 */

declare module "bun:ffi" {
  export type Pointer = number;
  export const FFIType: {
    readonly i32: "i32";
    readonly u32: "u32";
    readonly i64: "i64";
    readonly u64: "u64";
    readonly ptr: "ptr";
    readonly cstring: "cstring";
    readonly void: "void";
  };
  export type FFITypeName = (typeof FFIType)[keyof typeof FFIType];
  export interface FFIFunction {
    readonly args: readonly FFITypeName[];
    readonly returns: FFITypeName;
  }
  export interface Library<Fns extends Record<string, FFIFunction>> {
    readonly symbols: { [K in keyof Fns]: (...args: unknown[]) => unknown };
    close(): void;
  }
  export function dlopen<Fns extends Record<string, FFIFunction>>(path: string, symbols: Fns): Library<Fns>;
  export function ptr(view: ArrayBufferView | ArrayBufferLike, byteOffset?: number): Pointer;
  export const read: {
    i32(ptr: Pointer, byteOffset?: number): number;
    u32(ptr: Pointer, byteOffset?: number): number;
  };
  export class CString extends String {
    constructor(ptr: Pointer, byteOffset?: number, byteLength?: number);
  }
}

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
