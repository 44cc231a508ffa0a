import { execFile, spawn } from "node:child_process";
import { chmodSync, existsSync, mkdirSync, statSync, unlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { isSea } from "node:sea";
import type { Readable } from "node:stream";
import {
  type BootstrapInput,
  legacyReply,
  legacyReplyVersion,
  parseContainerdMajor,
} from "./bootstrap-legacy.ts";
import { type ShimFlags, serveArgs } from "./flags.ts";
import { groupIdOf, readBundleSpec } from "./oci.ts";
import { serverEnv } from "./server-flags.ts";
import { canConnect, DEFAULT_SOCKET_ROOT, shimSocketAddress, socketPath } from "./socket-address.ts";

/** Env var through which `start` tells the server which fd to report readiness on. */
export const READY_FD_ENV = "BEETROOT_SHIM_READY_FD";
/** Overrides where shim sockets go (tests with a private containerd, hosts without /run/containerd). */
export const SOCKET_DIR_ENV = "BEETROOT_SHIM_SOCKET_DIR";
const READY_TIMEOUT_MS = 30_000;

/** How to run this same program again: the SEA binary itself, or `node <bundle>` in development. */
export function selfCommand(): { file: string; args: string[] } {
  if (isSea()) return { file: process.execPath, args: [] };
  const script = process.argv[1];
  if (!script) throw new Error("cannot tell which script is running to re-execute it");
  return { file: process.execPath, args: [...process.execArgv, script] };
}

/** Runs `<containerd> --version` once to learn which task API version a legacy reply may announce. */
export function containerdMajor(binary: string): Promise<number | undefined> {
  if (binary === "" || !existsSync(binary)) return Promise.resolve(undefined);
  return new Promise((resolve) => {
    execFile(binary, ["--version"], { timeout: 3_000 }, (err, stdout) => {
      resolve(err ? undefined : parseContainerdMajor(stdout));
    });
  });
}

function writeBundleFile(bundle: string, name: string, content: string): void {
  writeFileSync(join(bundle, name), content, { mode: 0o600 });
}

/**
 * Starts the long-lived server detached (its own session and process group, stdio on /dev/null,
 * cwd = bundle) and waits until it reports that its socket accepts connections. The server binds
 * the socket itself and reports over an inherited pipe: the reply that follows is only printed once
 * containerd can connect, and a server that fails to start says why instead of timing out.
 */
export async function spawnServer(opts: {
  flags: ShimFlags;
  bundle: string;
  socket: string;
  env: NodeJS.ProcessEnv;
}): Promise<number> {
  const self = selfCommand();
  const child = spawn(self.file, [...self.args, ...serveArgs(opts.flags, opts.socket)], {
    cwd: opts.bundle,
    detached: true,
    stdio: ["ignore", "ignore", "ignore", "pipe"],
    env: { ...serverEnv(opts.env), [READY_FD_ENV]: "3" },
  });
  const pid = child.pid;
  if (pid === undefined) {
    await new Promise((r) => child.once("error", r));
    throw new Error(`cannot start the shim server (${self.file})`);
  }
  const ready = child.stdio[3] as Readable;
  let report = "";
  ready.setEncoding("utf8");
  ready.on("data", (d: string) => {
    if (report.length < 4096) report += d;
  });
  const outcome = await new Promise<"ready" | "exited" | "timeout">((resolve) => {
    const timer = setTimeout(() => resolve("timeout"), READY_TIMEOUT_MS);
    ready.once("close", () => {
      clearTimeout(timer);
      resolve(report.startsWith("ok") ? "ready" : "exited");
    });
  });
  child.unref();
  if (outcome === "ready") return pid;
  try {
    process.kill(pid, "SIGKILL");
  } catch {}
  if (outcome === "timeout")
    throw new Error(`shim server did not become ready within ${READY_TIMEOUT_MS} ms`);
  throw new Error(
    `shim server failed to start: ${report.replace(/^error:\s*/, "").trim() || "no reason given"}`,
  );
}

export interface StartResult {
  readonly output: Uint8Array;
  readonly address: string;
  readonly reused: boolean;
  readonly bootstrap: BootstrapInput;
}

/**
 * `start`: find or spawn the shim serving this container's group and print how to reach it.
 * Nothing but the reply may reach stdout (containerd parses all of it) — and on failure the error
 * text goes to stderr, which containerd folds into its error message.
 */
export async function runStart(opts: {
  flags: ShimFlags;
  stdin: Uint8Array;
  cwd: string;
  env: NodeJS.ProcessEnv;
}): Promise<StartResult> {
  const { flags, env } = opts;
  if (flags.namespace === "") throw new Error("shim namespace cannot be empty");
  if (flags.id === "") throw new Error("shim id cannot be empty");
  const bundle = flags.bundle || opts.cwd;
  // containerd ≤ 2.2 without runtime options sends nothing: then the protobuf runtime stays unloaded.
  const bootstrap: BootstrapInput =
    opts.stdin.length === 0
      ? { format: "legacy" }
      : (await import("./bootstrap.ts")).sniffBootstrapInput(opts.stdin, {
          id: flags.id,
          namespace: flags.namespace,
        });
  const { spec } = readBundleSpec(bundle);
  const group = groupIdOf(spec.annotations, flags.id);
  const socketRoot = bootstrap.socketDir ?? env[SOCKET_DIR_ENV] ?? DEFAULT_SOCKET_ROOT;
  const address = shimSocketAddress({
    socketRoot,
    containerdAddress: flags.address,
    namespace: flags.namespace,
    id: group,
  });
  const path = socketPath(address);
  // Only a legacy reply needs containerd's version; asking it (a Go start-up) runs while the server starts.
  const major =
    bootstrap.format === "legacy" ? containerdMajor(flags.publishBinary) : Promise.resolve(undefined);

  let reused = false;
  if (await canConnect(path)) {
    // Another container of this group already has its shim: join it.
    reused = true;
  } else {
    if (existsSync(path)) unlinkSync(path); // left by a dead shim
    ensureSocketDir(dirname(path));
    // A RuntimeClass's ConfigPath becomes the server's config file (paths.ts reads BEETROOT_CONFIG).
    const configPath = bootstrap.runtimeOptions
      ? (await import("./runtime-options.ts")).configPathFromOptions(bootstrap.runtimeOptions)
      : undefined;
    const serverEnv = configPath ? { ...env, BEETROOT_CONFIG: configPath } : env;
    const pid = await spawnServer({ flags, bundle, socket: path, env: serverEnv });
    writeBundleFile(bundle, "shim.pid", String(pid));
  }
  writeBundleFile(bundle, "address", address);

  const output =
    bootstrap.format === "legacy"
      ? legacyReply({ version: legacyReplyVersion(await major), address, protocol: "ttrpc" })
      : (await import("./bootstrap.ts")).encodeBootstrapReply(bootstrap.format, {
          version: 3,
          address,
          protocol: "ttrpc",
        });
  return { output, address, reused, bootstrap };
}

/**
 * The socket directory: 0711 so other users can reach a socket they know the name of but cannot
 * list the directory, while each socket is 0600 (root only). Node cannot read SO_PEERCRED, so these
 * modes are the peer check: only the socket's owner (root, as containerd runs) can connect.
 */
export function ensureSocketDir(dir: string): void {
  if (!existsSync(dir)) {
    mkdirSync(dir, { recursive: true, mode: 0o711 });
    chmodSync(dir, 0o711);
  } else if (!statSync(dir).isDirectory()) {
    throw new Error(`${dir} exists and is not a directory`);
  }
}
