import { closeSync, statSync, unlinkSync, writeSync } from "node:fs";
import { dirname, join } from "node:path";
import { kmsgSink } from "../log/kmsg.ts";
import { createLogger, type Logger } from "../log/logger.ts";
import type { MountTranslator } from "../storage/types.ts";
import { Server } from "../ttrpc/server.ts";
import { listenUnix } from "../ttrpc/unix-listener.ts";
import { errorMessage } from "./errors.ts";
import { EventPublisher } from "./events.ts";
import { SHIM_BINARY_NAME, type ShimFlags } from "./flags.ts";
import { TtrpcEventForwarder } from "./forwarder.ts";
import { openLogFifo } from "./log-fifo.ts";
import { VmPodManager } from "./pod.ts";
import { RUNTIME_NAME, SHIM_VERSION } from "./runtime-info.ts";
import { ensureSocketDir, READY_FD_ENV } from "./start.ts";
import { attachStdio } from "./stdio.ts";
import { registerTaskApi } from "./task-api.ts";
import { TaskService } from "./task-service.ts";
import type { VmDefaults } from "./vm-size.ts";
import type { Vmm } from "./vmm.ts";

/** What the server builds its VMs and rootfs disks with; production wires QEMU and EROFS. */
export interface HostRuntime {
  readonly vmm: Vmm;
  readonly storage: MountTranslator;
  readonly vmDefaults?: () => VmDefaults;
}

export type HostRuntimeFactory = (log: Logger) => HostRuntime;

function reportReady(fd: number | undefined, line: string): void {
  if (fd === undefined) return;
  try {
    writeSync(fd, line);
    closeSync(fd);
  } catch {
    // `start` gave up waiting and is gone; nothing to tell.
  }
}

/**
 * Closing the listener already unlinked the socket, and a VM may power off for a while after that:
 * by then a new shim for a container of the same id can have bound the same path. Only our own goes.
 */
function removeOwnSocket(path: string, inode: number | undefined): void {
  try {
    if (inode !== undefined && statSync(path).ino === inode) unlinkSync(path);
  } catch {}
}

/**
 * The long-lived shim: serves the Task API on the socket `start` chose, publishes events to
 * containerd, logs to the bundle's `log` FIFO, and exits after a Shutdown that finds no task left.
 */
export async function runServer(opts: {
  flags: ShimFlags;
  env: NodeJS.ProcessEnv;
  cwd: string;
  host: HostRuntimeFactory;
}): Promise<void> {
  const { flags, env } = opts;
  const readyFd = env[READY_FD_ENV] ? Number(env[READY_FD_ENV]) : undefined;
  const bundle = flags.bundle || opts.cwd;
  const log = createLogger({
    fd: openLogFifo(join(bundle, "log")),
    level: flags.debug ? "debug" : "info",
    fields: { runtime: RUNTIME_NAME, namespace: flags.namespace },
    // containerd stops reading the FIFO when it closes the connection, before the last VM's
    // teardown has finished (docs/shim.md "Exit"): its failures still need a record.
    orphaned: kmsgSink(`${SHIM_BINARY_NAME}[${process.pid}]`),
  });
  // containerd starts the shim in the bundle and deletes that directory once it takes the shim for
  // dead, possibly while the shim still tears a pod down: nothing it spawns from then on (CNI
  // plugins, QEMU, vhost-device-vsock) could start in a deleted working directory.
  process.chdir("/");

  let server: Server | undefined;
  try {
    if (flags.socket === "") throw new Error("-socket is required to serve");
    if (flags.namespace === "") throw new Error("shim namespace cannot be empty");
    const host = opts.host(log);
    const publisher = new EventPublisher({
      forwarder: new TtrpcEventForwarder(env.TTRPC_ADDRESS ?? ""),
      namespace: flags.namespace,
      log,
    });
    const pods = new VmPodManager({
      containerdAddress: flags.address,
      vmm: host.vmm,
      storage: host.storage,
      log,
      ...(host.vmDefaults ? { vmDefaults: host.vmDefaults } : {}),
    });
    let exiting: Promise<void> | undefined;
    let socketInode: number | undefined;
    const shutdown = (reason: string): Promise<void> => {
      exiting ??= (async () => {
        log.info("shim exiting", { reason });
        await server?.close({ graceful: true, timeoutMs: 2_000 }).catch(() => {});
        await pods.shutdown();
        await publisher.close(3_000);
        removeOwnSocket(flags.socket, socketInode);
        process.exit(0);
      })();
      return exiting;
    };
    const svc = new TaskService({
      pods,
      publisher,
      attachStdio,
      namespace: flags.namespace,
      log,
      shimPid: process.pid,
      version: SHIM_VERSION,
      onShutdown: () => void shutdown("Shutdown with no task left"),
      ...(env.BEETROOT_DRAIN_IDLE_MS ? { drainTimeoutMs: Number(env.BEETROOT_DRAIN_IDLE_MS) } : {}),
    });

    server = new Server({ logger: log });
    registerTaskApi(server, svc);
    ensureSocketDir(dirname(flags.socket));
    await listenUnix(server, flags.socket, { mode: 0o600 });
    socketInode = statSync(flags.socket).ino;

    process.on("SIGTERM", () => void shutdown("SIGTERM"));
    process.on("SIGINT", () => void shutdown("SIGINT"));
    process.on("unhandledRejection", (err) => log.error("unhandled rejection", { error: errorMessage(err) }));
    log.info("shim serving", { socket: flags.socket, pid: process.pid, version: SHIM_VERSION, id: flags.id });
    reportReady(readyFd, "ok\n");
  } catch (err) {
    log.error("shim failed to start", { error: errorMessage(err) });
    reportReady(readyFd, `error: ${errorMessage(err)}\n`);
    await server?.close({ graceful: false }).catch(() => {});
    process.exitCode = 1;
  }
}
