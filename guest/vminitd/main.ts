/**
 * vminitd: PID 1 of every beetroot micro-VM. Sets the system up (filesystems, clock, hostname,
 * cgroup v2), reaps orphans, dials the host back over vsock and serves the guest API there, and
 * powers the VM off when asked, on SIGTERM, or when the host is gone for good.
 *
 * Bun runs this file (bundled to /usr/lib/beetroot/vminitd.js) as the kernel's init.
 */
import { chownSync, existsSync, mkdirSync, writeFileSync, writeSync } from "node:fs";
import { System } from "../../api/gen/beetroot/guest/v1/system_pb.ts";
import { Task } from "../../api/gen/beetroot/guest/v1/task_pb.ts";
import { Server } from "../../internal/ttrpc/index.ts";
import { bunNetworkOps } from "../network/guest-ops.ts";
import { type CgroupSetup, setupCgroup2 } from "./cgroup.ts";
import { parseBootParams } from "./cmdline.ts";
import { realClock } from "./dial.ts";
import { HostLink } from "./host-link.ts";
import { InfoSource, readText, uptimeSeconds } from "./info.ts";
import { createLogger, errorMessage, type Level, type Logger } from "./log.ts";
import { applyMounts, EARLY_MOUNTS, MS_NODEV, MS_NOEXEC, MS_NOSUID, MS_RDONLY } from "./mounts.ts";
import { GuestNetworkService } from "./network-service.ts";
import { Reaper } from "./reaper.ts";
import { createRunner } from "./runner.ts";
import { SelfTests } from "./selftests.ts";
import { SystemShutdown } from "./shutdown.ts";
import { VMADDR_CID_HOST } from "./sockaddr.ts";
import {
  ADDR_NO_RANDOMIZE,
  addPersonalityFlags,
  kill,
  mount,
  SyscallError,
  sethostname,
  setRealtimeClock,
  umount2,
} from "./sys/libc.ts";
import { childTable, mountOps, populateDev, systemOps } from "./sys/platform.ts";
import { connectVsock, dialVsock } from "./sys/vsock.ts";
import { systemService } from "./system-service.ts";
import { ConsoleSocket } from "./task/console-socket.ts";
import { DiskResolver } from "./task/disks.ts";
import { EventHub } from "./task/events.ts";
import { TaskService } from "./task/task-service.ts";
import { ensureVolumeShare } from "./task/volumes.ts";
import { VMINITD_VERSION } from "./version.ts";

/** How long the host may be unreachable after a connection drops before the VM powers off. */
const RECONNECT_WINDOW_MS = 10_000;
/** Grace for processes when the VM powers off because the host is gone. */
const ORPHAN_GRACE_SECONDS = 2;
/** Backstop for a lost SIGCHLD (none should be lost: every signal triggers a full scan). */
const REAP_POLL_MS = 5_000;
const MNT_DETACH = 2;

function consoleLogger(level: Level = "info"): Logger {
  // fd 2 is /dev/console: the kernel opened it for init before exec.
  return createLogger({ write: (line) => writeSync(2, line), fields: { src: "vminitd" }, level });
}

async function boot(early: Logger): Promise<void> {
  applyMounts(EARLY_MOUNTS, mountOps, early);
  const startUptime = uptimeSeconds();
  const initExecUptime = Number(process.env.BEETROOT_INIT_UPTIME ?? "0") || 0;
  populateDev();

  const params = parseBootParams(readText("/proc/cmdline"));
  const log = params.logLevel === "info" ? early : consoleLogger(params.logLevel);
  for (const problem of params.problems) log.warn("bad boot parameter, using the default", { problem });
  if (params.hostTimeMs !== undefined) {
    // The host stamped the time when it spawned the VM; the guest has been running for `uptime` since.
    try {
      setRealtimeClock(params.hostTimeMs + Math.round(uptimeSeconds() * 1000));
    } catch (err) {
      log.error("cannot set the clock", { error: errorMessage(err) });
    }
  }
  if (params.hostname !== undefined) {
    try {
      sethostname(params.hostname);
    } catch (err) {
      log.error("cannot set the hostname", { error: errorMessage(err) });
    }
  }
  try {
    // QEMU 7.2's TCG finds translated code by virtual address: with ASLR every crun run maps
    // ld.so, libc and crun elsewhere and has all of it translated again. Fixed addresses for the
    // programs vminitd runs let later runs reuse the translations (crun start and delete ~2-3x
    // faster, docs/boot-time.md). Containers keep ASLR: their spec names a personality (spec.ts).
    addPersonalityFlags(ADDR_NO_RANDOMIZE);
  } catch (err) {
    log.warn("cannot fix the address layout of helper programs", { error: errorMessage(err) });
  }
  log.info("vminitd starting", {
    version: VMINITD_VERSION,
    bun: process.versions.bun,
    uptime_s: startUptime,
    init_exec_uptime_s: initExecUptime,
    port: params.port,
    hostname: params.hostname,
  });

  let cgroups: CgroupSetup = { available: [], enabled: [], missing: [] };
  try {
    cgroups = setupCgroup2("/sys/fs/cgroup", process.pid, log);
    log.info("cgroup v2 ready", { enabled: cgroups.enabled.join(","), missing: cgroups.missing.join(",") });
  } catch (err) {
    log.error("cgroup v2 setup failed", { error: errorMessage(err) });
  }

  const reaper = new Reaper(childTable(process.pid), { log });
  process.on("SIGCHLD", () => reaper.schedule());
  setInterval(() => reaper.schedule(), REAP_POLL_MS);
  reaper.schedule();
  const run = createRunner(reaper);

  const server = new Server({ logger: log });
  let link: HostLink | undefined;
  const shutdown = new SystemShutdown(
    {
      ...systemOps,
      reapNow: () => {
        reaper.reapNow();
      },
      closeHostLink: async () => {
        await link?.close();
        await server.close({ graceful: true, timeoutMs: 1000 });
      },
      sleep: (ms) => new Promise((resolve) => setTimeout(resolve, ms)),
      now: () => Date.now(),
    },
    log,
  );
  const beginShutdown = (reason: string, graceSeconds: number) => {
    void shutdown.run({ reason, graceMs: graceSeconds * 1000 });
  };
  for (const signal of ["SIGTERM", "SIGPWR"] as const) {
    process.on(signal, () => beginShutdown(`${signal} to PID 1`, 10));
  }

  let readyUptime = 0;
  const info = new InfoSource({
    version: VMINITD_VERSION,
    bunVersion: process.versions.bun ?? "unknown",
    timeline: () => ({ initExecUptime, startUptime, readyUptime }),
    cgroupControllers: () => cgroups.enabled,
  });
  server.register(
    System,
    systemService({
      info: async () => info.info(),
      health: () => {
        if (shutdown.inProgress) return { ok: false, detail: "shutting down" };
        const s = reaper.stats;
        return {
          ok: true,
          detail: `uptime=${uptimeSeconds().toFixed(2)}s reaped=${s.reaped} waiting=${s.waiting}`,
        };
      },
      beginShutdown,
      selfTests: new SelfTests(run),
      // Imported statically like everything vminitd runs: a dynamic import() makes esbuild wrap
      // the modules it reaches in lazy initialisers, @bufbuild/protobuf included, and those run
      // all of its indexes' modules, descriptor.proto's boot among them (docs/boot-time.md).
      network: new GuestNetworkService(bunNetworkOps),
    }),
  );

  const disks = new DiskResolver({
    share: {
      isMounted: (dir) => mountOps.isMounted(dir),
      mountShare: (tag, dir) => {
        mkdirSync(dir, { recursive: true, mode: 0o700 });
        // cache=loose: the share's files never change (a name is bound once, to an immutable layer
        // image), and page-cache readahead makes cold reads 3-5x faster than cache=none (docs/storage.md).
        mount(
          tag,
          dir,
          "9p",
          MS_RDONLY | MS_NOSUID | MS_NODEV | MS_NOEXEC,
          "trans=virtio,version=9p2000.L,cache=loose",
        );
      },
    },
  });
  const tasks = new TaskService({
    runner: run,
    rootfsOps: {
      resolveDisk: (serial, fstype) => disks.resolve(serial, fstype),
      mkdirp: (path, mode) => {
        mkdirSync(path, { recursive: true, mode });
      },
      chown: (path, uid, gid) => chownSync(path, uid, gid),
      mount: (source, target, fstype, flags, data) =>
        mount(source, target, fstype, flags, data === "" ? null : data),
      unmount: (target) => {
        try {
          umount2(target, 0);
        } catch (err) {
          if (!(err instanceof SyscallError) || err.code !== "EBUSY") throw err;
          umount2(target, MNT_DETACH);
        }
      },
    },
    // The host listens on its stdio ports before it sends the request: one attempt is enough.
    dial: (port) => connectVsock(VMADDR_CID_HOST, port),
    waitFor: (pid, sinceMs) => reaper.waitFor(pid, sinceMs),
    kill: (pid, signal) => kill(pid, signal),
    exists: (path) => existsSync(path),
    ensureVolumeShare: () =>
      ensureVolumeShare({
        isMounted: (dir) => mountOps.isMounted(dir),
        mountVirtiofs: (tag, dir) => {
          mkdirSync(dir, { recursive: true, mode: 0o700 });
          // No flags on the share's root: each volume's bind carries the container's own (ro, nosuid, …).
          mount(tag, dir, "virtiofs", 0, null);
        },
      }),
    writeSysctl: (path, value) => writeFileSync(path, value),
    listenConsole: (path) => ConsoleSocket.listen(path),
    log,
    hub: new EventHub(),
  });
  server.register(Task, tasks.impl());

  link = new HostLink(
    {
      dial: () => dialVsock(VMADDR_CID_HOST, params.port),
      serve: (stream) => server.serveConnection(stream),
      onGiveUp: (reason) => beginShutdown(`host unreachable: ${reason}`, ORPHAN_GRACE_SECONDS),
      onConnected: (n) => log.info("connected to the host", { connection: n, uptime_s: uptimeSeconds() }),
      clock: realClock,
      log,
    },
    { dialTimeoutMs: params.dialTimeoutMs, reconnectTimeoutMs: RECONNECT_WINDOW_MS },
  );
  readyUptime = uptimeSeconds();
  log.info("dialling the host", { cid: VMADDR_CID_HOST, port: params.port, uptime_s: readyUptime });
  void link.start();
}

function main(): void {
  const log = consoleLogger();
  if (process.pid !== 1) {
    log.error("vminitd must run as PID 1 (the guest's init)", { pid: process.pid });
    process.exit(2);
  }
  // PID 1 must never exit: the kernel panics. Log what escaped and keep serving.
  process.on("uncaughtException", (err) => log.error("uncaught exception", { error: errorMessage(err) }));
  process.on("unhandledRejection", (err) => log.error("unhandled rejection", { error: errorMessage(err) }));
  boot(log).catch((err: unknown) => {
    log.error("boot failed, powering off", { error: errorMessage(err) });
    try {
      systemOps.sync();
      systemOps.powerOff();
    } catch (e) {
      log.error("power-off failed", { error: errorMessage(e) });
      systemOps.restart();
    }
  });
}

main();
