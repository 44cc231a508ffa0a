/**
 * How the long-lived server's Node/V8 runs: tuned for memory, because the server idles beside its
 * VMs for the pod's whole life and its hot path (stdio) is libuv and kernel copies, not JavaScript.
 * Measured in docs/shim.md ("Memory and start-up"). Kept free of imports: main.ts reads it before
 * loading anything else.
 */

/**
 * Given to the server through NODE_OPTIONS (a single executable takes no node flags on its command
 * line). `--jitless`: no Sparkplug/TurboFan/irregexp code, so their machine code in the executable
 * is never paged in and there is no code space. `--max-semi-space-size=1`: a 2 MiB young generation
 * instead of one that grows to 16 MiB after start-up's allocation burst.
 */
export const SERVER_NODE_OPTIONS = ["--jitless", "--max-semi-space-size=1"] as const;

/**
 * V8 flags NODE_OPTIONS refuses, set by the server itself before its modules load.
 * `--lite-mode` (feedback vectors only where needed, optimize-for-size): −1 MiB measured.
 */
export const SERVER_RUNTIME_V8_FLAGS = ["--lite-mode"] as const;

/**
 * The run-time flags for a server whose NODE_OPTIONS are `nodeOptions`: none unless it already runs
 * `--jitless`. `--lite-mode` implies `--jitless`, and turning the JIT off in a running isolate is not
 * something V8 supports: set after the server's modules had run, it crashed the server at its first
 * Create (measured); with `--jitless` from the start the implication changes nothing.
 */
export function serverRuntimeV8Flags(nodeOptions: string | undefined): readonly string[] {
  return (nodeOptions ?? "").split(/\s+/).includes("--jitless") ? SERVER_RUNTIME_V8_FLAGS : [];
}

/**
 * Overrides SERVER_NODE_OPTIONS (`""` for none) — for comparing, or to undo a flag that misbehaves.
 * Also carries the caller's own NODE_OPTIONS across to the server (see SERVER_NODE_OPTIONS_ENV).
 */
export const SERVER_NODE_OPTIONS_OVERRIDE_ENV = "BEETROOT_SHIM_NODE_OPTIONS";

/** Where start keeps containerd's own NODE_OPTIONS ("" = none) so the server can give them back to its children. */
export const SERVER_NODE_OPTIONS_ENV = "BEETROOT_SHIM_SAVED_NODE_OPTIONS";

/** The environment start gives the server: ours NODE_OPTIONS, the caller's saved aside. */
export function serverEnv(env: NodeJS.ProcessEnv): NodeJS.ProcessEnv {
  const flags = env[SERVER_NODE_OPTIONS_OVERRIDE_ENV] ?? SERVER_NODE_OPTIONS.join(" ");
  return { ...env, NODE_OPTIONS: flags, [SERVER_NODE_OPTIONS_ENV]: env.NODE_OPTIONS ?? "" };
}

/** In the server: puts back the NODE_OPTIONS containerd gave `start` (or none), so children never see ours. */
export function restoreCallerNodeOptions(env: NodeJS.ProcessEnv): void {
  const saved = env[SERVER_NODE_OPTIONS_ENV];
  if (saved === undefined) return;
  if (saved === "") delete env.NODE_OPTIONS;
  else env.NODE_OPTIONS = saved;
  delete env[SERVER_NODE_OPTIONS_ENV];
}
