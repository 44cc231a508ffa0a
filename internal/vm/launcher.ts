import { existsSync, fstatSync, mkdirSync } from "node:fs";
import type { Socket } from "node:net";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import { type InfoResponse, System } from "../../api/gen/beetroot/guest/v1/system_pb.ts";
import type { BeetrootPaths } from "../config/paths.ts";
import { kernelTraits } from "../kernel/artifact.ts";
import type { Logger } from "../log/logger.ts";
import type { VmNic } from "../network/network.ts";
import { releaseAll, releaseContext } from "../state/gc.ts";
import { type Ledger, openLedger } from "../state/ledger.ts";
import { identify } from "../state/proc.ts";
import { basicReleasers, detachMount, type Releasers } from "../state/releasers.ts";
import type { ProcessResource } from "../state/resources.ts";
import { Client } from "../ttrpc/index.ts";
import { bindVolume, prepareShareDirs, type ShareDirs, unbindVolume } from "../volumes/host-share.ts";
import type { Volume } from "../volumes/plan.ts";
import { virtiofsdArgs } from "../volumes/virtiofsd.ts";
import { tcgAnnouncement } from "./accel.ts";
import {
  AssetError,
  checkErofsImage,
  checkKernel,
  GUEST_BUILD_COMMAND,
  KERNEL_BUILD_COMMAND,
} from "./assets-check.ts";
import { type Child, describeExit, spawnChild, tailFile, terminateChild } from "./child.ts";
import { bindFileReadOnly, checkSharedName, checkSharedSource, unbindFile } from "./disk-share.ts";
import { type Accelerator, buildKernelCmdline, buildQemuArgs, tcgLapicTimerPeriod } from "./qemu-args.ts";
import { QmpClient, QmpTimeoutError } from "./qmp.ts";
import { isTerminal, type VmState, VmStateMachine } from "./state-machine.ts";
import { ResourceTracker } from "./tracker.ts";
import type { BootTimings, Vm, VmExit, Vmm, VmSpec } from "./vm.ts";
import { connectVsock, VsockListener, vsockCreditWindow, vsockDaemonArgs } from "./vsock.ts";

export interface QemuVmmDeps {
  readonly qemu: string;
  readonly vhostDeviceVsock: string;
  /** virtiofsd: without it a VM has no volume share (VmSpec.volumes is refused). */
  readonly virtiofsd?: string;
  readonly paths: BeetrootPaths;
  readonly log: Logger;
  /** Releasers for the VM's own resources (defaults to the basic ones). */
  readonly releasers?: Releasers;
}

export const DEFAULT_GUEST_PORT = 1024;
export const DEFAULT_INIT = "/sbin/init";
const GUEST_CID = 3;
const ID_RE = /^[A-Za-z0-9][A-Za-z0-9-]{0,62}$/;
/** QMP liveness: a query every second, a failure after two unanswered ones. */
const WATCH_INTERVAL_MS = 1000;
const WATCH_TIMEOUT_MS = 3000;
const WATCH_MAX_MISSES = 2;
/** QEMU run states in which the guest is gone for good (QEMU's RunState names). */
const DEAD_STATES = new Set(["internal-error", "guest-panicked", "io-error", "shutdown"]);

/** A VM that died or could not boot; the message carries the console and QEMU stderr tails. */
export class VmFailedError extends Error {
  constructor(
    message: string,
    readonly consoleTail: string,
    readonly qemuStderrTail: string,
    options?: ErrorOptions,
  ) {
    super(message, options);
    this.name = "VmFailedError";
  }
}

class StopRequested extends Error {
  constructor(readonly kind: "stop" | "kill") {
    super(`VM ${kind} requested during boot`);
  }
}

/** A NIC's TAP descriptor must still be open: QEMU would otherwise get nothing (or another file). */
function checkNics(nics: readonly VmNic[]): void {
  for (const n of nics) {
    if (!Number.isInteger(n.fd) || n.fd < 0)
      throw new Error(`NIC ${n.id}: TAP descriptor ${n.fd} is not a descriptor`);
    try {
      if (!fstatSync(n.fd).isCharacterDevice()) throw new Error("not a character device");
    } catch (err) {
      throw new Error(
        `NIC ${n.id}: TAP descriptor ${n.fd} (${n.tap}) is not an open TAP (${(err as Error).message}); close the network's descriptors only after launch()`,
      );
    }
  }
}

export class QemuVmm implements Vmm {
  constructor(private readonly deps: QemuVmmDeps) {}

  async launch(spec: VmSpec, opts: { signal?: AbortSignal } = {}): Promise<Vm> {
    const vm = new QemuVm(spec, this.deps);
    await vm.boot(opts.signal);
    return vm;
  }
}

interface RunFiles {
  readonly dir: string;
  readonly qmp: string;
  readonly vhostUser: string;
  readonly vsockUds: string;
  readonly console: string;
  readonly qemuStderr: string;
  readonly vsockdStderr: string;
  /** Exported to the guest over virtio-9p: disks added after boot (disk-share.ts). */
  readonly diskShare: string;
  /** The volume share (internal/volumes): exported by virtiofsd, binds staged next to it. */
  readonly volumes: ShareDirs;
  readonly virtiofsdSocket: string;
  readonly virtiofsdStderr: string;
}

class QemuVm implements Vm {
  readonly id: string;
  readonly accel: Accelerator;
  readonly exited: Promise<VmExit>;
  private readonly sm = new VmStateMachine();
  private readonly log: Logger;
  private readonly files: RunFiles;
  private readonly bootAbort = new AbortController();
  private resolveExited!: (e: VmExit) => void;
  private tracker: ResourceTracker | undefined;
  private ownLedger: Ledger | undefined;
  private qemu: Child | undefined;
  private vsockd: Child | undefined;
  private virtiofsd: Child | undefined;
  private qmp: QmpClient | undefined;
  private guestClient: Client | undefined;
  private guestInfo: InfoResponse | undefined;
  private bootTimings: BootTimings | undefined;
  private watchTimer: NodeJS.Timeout | undefined;
  private ending: Promise<VmExit> | undefined;
  private launchedAt = 0;
  /** Disks in the share, by name: each one's release (once; also on the cleanup stack). */
  private readonly shared = new Map<string, () => Promise<void>>();

  constructor(
    private readonly spec: VmSpec,
    private readonly deps: QemuVmmDeps,
  ) {
    if (!ID_RE.test(spec.id)) {
      throw new Error(`VM id ${JSON.stringify(spec.id)} must match ${ID_RE} (it is the guest's hostname)`);
    }
    this.id = spec.id;
    this.accel = spec.accel;
    this.log = deps.log.with({ vm: spec.id });
    const dir = join(deps.paths.runDir, "vm", spec.id);
    this.files = {
      dir,
      qmp: join(dir, "qmp.sock"),
      vhostUser: join(dir, "vhost-user.sock"),
      vsockUds: join(dir, "vsock.sock"),
      console: join(dir, "console.log"),
      qemuStderr: join(dir, "qemu.log"),
      vsockdStderr: join(dir, "vhost-device-vsock.log"),
      diskShare: join(dir, "disks"),
      volumes: { share: join(dir, "volumes"), stage: join(dir, "volumes-stage") },
      virtiofsdSocket: join(dir, "virtiofsd.sock"),
      virtiofsdStderr: join(dir, "virtiofsd.log"),
    };
    // Unix socket paths are limited to 107 bytes; the longest one is the vsock port listener.
    const longest = `${this.files.vsockUds}_${spec.guestPort ?? DEFAULT_GUEST_PORT}`;
    if (Buffer.byteLength(longest) > 107) {
      throw new Error(
        `run dir too deep for unix sockets: ${longest} exceeds 107 bytes (set BEETROOT_RUN_DIR shorter)`,
      );
    }
    this.exited = new Promise((r) => {
      this.resolveExited = r;
    });
  }

  get state(): VmState {
    return this.sm.state;
  }

  get guest(): Client {
    if (!this.guestClient) throw new Error(`VM ${this.id} has no guest connection (state ${this.state})`);
    return this.guestClient;
  }

  get info(): InfoResponse {
    if (!this.guestInfo) throw new Error(`VM ${this.id} has not booted (state ${this.state})`);
    return this.guestInfo;
  }

  get timings(): BootTimings {
    if (!this.bootTimings) throw new Error(`VM ${this.id} has not booted (state ${this.state})`);
    return this.bootTimings;
  }

  get pids(): { qemu: number; vhostDeviceVsock: number } {
    if (!this.qemu || !this.vsockd) throw new Error(`VM ${this.id} has no processes (state ${this.state})`);
    return { qemu: this.qemu.pid, vhostDeviceVsock: this.vsockd.pid };
  }

  get consoleLog(): string {
    return this.files.console;
  }

  onStateChange(listener: (to: VmState, from: VmState) => void): void {
    this.sm.onChange(listener);
  }

  // ---- boot -------------------------------------------------------------------------------

  async boot(signal?: AbortSignal): Promise<void> {
    this.launchedAt = performance.now();
    this.sm.to("starting");
    if (this.accel === "tcg") {
      this.log.warn(tcgAnnouncement(this.spec.accelReason ?? "accelerator tcg requested by the caller"));
    }
    const onCallerAbort = () => this.bootAbort.abort(new StopRequested("kill"));
    signal?.addEventListener("abort", onCallerAbort, { once: true });
    try {
      checkKernel(this.spec.kernel);
      checkErofsImage(this.spec.rootImage);
      checkNics(this.spec.nics ?? []);
      await this.bootSteps();
      this.sm.to("running");
      this.log.info("VM running", { accel: this.accel, boot_ms: this.bootTimings?.totalMs });
    } catch (err) {
      let cause = this.bootAbort.signal.aborted ? this.bootAbort.signal.reason : err;
      if (!(cause instanceof StopRequested)) cause = await this.explain(cause);
      if (cause instanceof StopRequested) {
        if (this.sm.can("stopping")) this.sm.to("stopping");
        await this.finish("stopped", undefined);
        throw new Error(`VM ${this.id}: boot cancelled (${cause.kind} requested)`);
      }
      // A bad kernel or image file is named precisely by its check: there is no console to show.
      const error = cause instanceof AssetError ? cause : this.failure(`VM ${this.id} failed to boot`, cause);
      if (this.sm.can("failed")) this.sm.to("failed");
      await this.finish("failed", error);
      throw error;
    } finally {
      signal?.removeEventListener("abort", onCallerAbort);
    }
  }

  private async bootSteps(): Promise<void> {
    const { spec, files } = this;
    const abort = this.bootAbort.signal;
    if (!spec.ledger) this.ownLedger = await openLedger(`vm-${spec.id}`, this.deps.paths);
    const ledger = spec.ledger ?? this.ownLedger!;
    const releasers = this.deps.releasers ?? basicReleasers();
    const t = new ResourceTracker(ledger, releasers, releaseContext(this.deps.paths, this.log));
    this.tracker = t;
    if (!spec.ledger) {
      // A previous VM with this id died with its launcher: finish its cleanup before reusing the id.
      const leftovers = await ledger.list();
      if (leftovers.length) {
        this.log.warn("releasing leftovers of a crashed VM with the same id", { count: leftovers.length });
        const { failed } = await releaseAll(ledger, releasers, releaseContext(this.deps.paths, this.log));
        if (failed.length) {
          throw new Error(
            `leftovers of a previous VM "${spec.id}" cannot be released: ${failed.map((f) => `${f.resource}: ${f.error}`).join("; ")}`,
          );
        }
      }
    }

    // Checked before recording: a failed create is released like a half-made one, and this dir
    // would be another VM's.
    if (existsSync(files.dir)) {
      throw new Error(`${files.dir} exists: VM id "${spec.id}" is in use (or run \`beetroot gc\`)`);
    }
    await t.acquire("run-dir", { kind: "dir", path: files.dir }, () => {
      mkdirSync(files.dir, { recursive: true, mode: 0o700 });
    });
    for (const [label, path] of [
      ["console-log", files.console],
      ["qemu-stderr", files.qemuStderr],
      ["vsockd-stderr", files.vsockdStderr],
    ] as const) {
      await t.acquire(label, { kind: "file", path }, () => {});
    }
    // Empty at boot; shareFile() binds disks into it. Released after them (stack order).
    await t.acquire("disk-share", { kind: "dir", path: files.diskShare }, () => {
      mkdirSync(files.diskShare, { mode: 0o700 });
    });

    // The guest dials back as soon as it is up: listen before anything boots.
    const port = spec.guestPort ?? DEFAULT_GUEST_PORT;
    const listener = await t.acquire(
      "vsock-listener",
      { kind: "socket", path: `${files.vsockUds}_${port}` },
      () => VsockListener.listen(files.vsockUds, port),
      (l) => l.close(),
    );

    const started = performance.now();
    await t.acquire("vhost-user-socket", { kind: "socket", path: files.vhostUser }, () => {});
    await t.acquire("vsock-uds", { kind: "socket", path: files.vsockUds }, () => {});
    const kernel = kernelTraits(spec.kernel);
    const vsockdArgs = vsockDaemonArgs(GUEST_CID, files.vhostUser, files.vsockUds, vsockCreditWindow(kernel));
    this.vsockd = await this.spawnTracked(
      "vhost-device-vsock",
      this.deps.vhostDeviceVsock,
      vsockdArgs,
      files.vhostUser,
      files.vsockdStderr,
    );
    await this.waitForSocketFile(files.vhostUser, this.vsockd, "vhost-device-vsock", 5000);
    const vsockDaemonMs = performance.now() - started;
    if (spec.volumes) await this.startVolumeShare();

    const hostTimeMs = Date.now();
    const cmdline = buildKernelCmdline({
      hostname: spec.id,
      port,
      hostTimeMs,
      dialTimeoutMs: spec.bootTimeoutMs,
      tscKhz: spec.tscKhz,
      init: spec.init ?? DEFAULT_INIT,
      verbose: spec.verboseConsole ?? false,
      lapicTimerPeriod: spec.accel === "tcg" ? tcgLapicTimerPeriod(kernel.hz) : undefined,
      extra: spec.kernelArgs ?? [],
    });
    const qemuArgs = buildQemuArgs({
      kernel: spec.kernel,
      cmdline,
      accel: spec.accel,
      cpus: spec.cpus,
      memoryMiB: spec.memoryMiB,
      disks: [{ id: "root", path: spec.rootImage, readonly: true }, ...(spec.disks ?? [])],
      qmpSocket: files.qmp,
      consoleLog: files.console,
      vhostUserSocket: files.vhostUser,
      diskShare: files.diskShare,
      ...(spec.volumes ? { volumeSocket: files.virtiofsdSocket } : {}),
      // QEMU finds the TAPs at fd 3, 4, … (spawn's stdio slots after stderr).
      nics: (spec.nics ?? []).map((nic, i) => ({ nic, fdInChild: 3 + i })),
    });
    await t.acquire("qmp-socket", { kind: "socket", path: files.qmp }, () => {});
    const spawnedAt = performance.now();
    this.qemu = await this.spawnTracked(
      "qemu",
      this.deps.qemu,
      qemuArgs,
      files.qmp,
      files.qemuStderr,
      (spec.nics ?? []).map((n) => n.fd),
    );
    this.watchChildren();

    this.qmp = await QmpClient.connect(files.qmp, { timeoutMs: 10_000, abort });
    t.defer("qmp-client", () => this.qmp?.close());
    const qmpReadyMs = performance.now() - spawnedAt;
    this.startWatchdog();

    const remaining = () => Math.max(spec.bootTimeoutMs - (performance.now() - spawnedAt), 1);
    const socket = await listener.accept(remaining(), abort);
    const guestConnectedMs = performance.now() - spawnedAt;
    const client = new Client(socket);
    this.guestClient = client;
    t.defer("guest-client", () => client.close());
    const info = await client.service(System).info({}, { timeoutMs: remaining(), signal: abort });
    const totalMs = performance.now() - spawnedAt;
    this.guestInfo = info;
    this.bootTimings = {
      vsockDaemonMs,
      launcherMs: spawnedAt - this.launchedAt,
      qmpReadyMs,
      guestConnectedMs,
      totalMs,
      guestInitExecS: info.initExecUptimeSeconds,
      guestVminitdStartS: info.vminitdStartUptimeSeconds,
      guestReadyS: info.readyUptimeSeconds,
      guestUptimeAtInfoS: info.uptimeSeconds,
    };
    void client.closed.then((err) =>
      this.unexpected(new Error(`vminitd's connection closed${err ? `: ${err.message}` : ""}`)),
    );
  }

  /**
   * The volume share: its two mount points (recorded first, so gc detaches them before it removes
   * the run dir), then virtiofsd serving the share, ready before QEMU connects to it.
   */
  private async startVolumeShare(): Promise<void> {
    const { files } = this;
    const t = this.tracker!;
    const virtiofsd = this.deps.virtiofsd;
    if (!virtiofsd) throw new Error("this VMM has no virtiofsd: a VM with volumes cannot be started");
    await t.acquire("virtiofsd-stderr", { kind: "file", path: files.virtiofsdStderr }, () => {});
    for (const [label, path] of [
      ["volume-share", files.volumes.share],
      ["volume-stage", files.volumes.stage],
    ] as const) {
      await t.acquire(
        label,
        { kind: "mount", path },
        () => {},
        () => detachMount(path),
      );
    }
    await prepareShareDirs(files.volumes);
    await t.acquire("virtiofsd-socket", { kind: "socket", path: files.virtiofsdSocket }, () => {});
    this.virtiofsd = await this.spawnTracked(
      "virtiofsd",
      virtiofsd,
      virtiofsdArgs(files.virtiofsdSocket, files.volumes.share),
      files.virtiofsdSocket,
      files.virtiofsdStderr,
    );
    await this.waitForSocketFile(files.virtiofsdSocket, this.virtiofsd, "virtiofsd", 5000);
  }

  /** Records the process (by a marker path in its argv) before spawning it, then its identity. */
  private async spawnTracked(
    label: string,
    file: string,
    args: string[],
    marker: string,
    stderrFile: string,
    passFds: readonly number[] = [],
  ): Promise<Child> {
    const t = this.tracker!;
    const base: ProcessResource = { kind: "process", cmd: [file, ...args], marker };
    return t.acquire(
      label,
      base,
      async (entryId) => {
        const child = await spawnChild(file, args, stderrFile, passFds);
        const id = identify(child.pid);
        if (id) await t.ledger.update(entryId, { ...base, ...id });
        return child;
      },
      async (child) => {
        await terminateChild(child, 1000);
      },
    );
  }

  private async waitForSocketFile(
    path: string,
    child: Child,
    name: string,
    timeoutMs: number,
  ): Promise<void> {
    const deadline = performance.now() + timeoutMs;
    while (!existsSync(path)) {
      if (child.exit) throw new Error(`${name} exited (${describeExit(child.exit)}) before creating ${path}`);
      this.bootAbort.signal.throwIfAborted();
      if (performance.now() > deadline)
        throw new Error(`${name} did not create ${path} within ${timeoutMs} ms`);
      await sleep(2);
    }
  }

  // ---- watching ---------------------------------------------------------------------------

  private watchChildren(): void {
    const qemu = this.qemu!;
    void qemu.exited.then((e) => this.unexpected(new Error(`QEMU exited (${describeExit(e)})`)));
    const vsockd = this.vsockd!;
    void vsockd.exited.then((e) =>
      this.unexpected(new Error(`vhost-device-vsock exited (${describeExit(e)})`)),
    );
    void this.virtiofsd?.exited.then((e) =>
      this.unexpected(new Error(`virtiofsd exited (${describeExit(e)})`)),
    );
  }

  private startWatchdog(): void {
    const qmp = this.qmp!;
    let misses = 0;
    let inFlight = false;
    const check = async () => {
      if (inFlight || isTerminal(this.state) || this.state === "stopping") return;
      inFlight = true;
      try {
        const { status } = await qmp.queryStatus(WATCH_TIMEOUT_MS);
        misses = 0;
        if (DEAD_STATES.has(status))
          this.unexpected(
            new Error(
              `QEMU reports the guest ${status === "shutdown" ? "shut down" : `in state "${status}"`}`,
            ),
          );
      } catch (err) {
        if (err instanceof QmpTimeoutError && ++misses >= WATCH_MAX_MISSES) {
          this.unexpected(
            new Error(`QEMU stopped answering QMP (${misses} queries × ${WATCH_TIMEOUT_MS} ms unanswered)`),
          );
        }
      } finally {
        inFlight = false;
      }
    };
    // Events make the common failures immediate; the timer catches a QEMU that went silent.
    qmp.onEvent((e) => {
      if (e.event === "STOP" || e.event === "GUEST_PANICKED" || e.event === "SHUTDOWN") void check();
    });
    void qmp.closed.then(() => this.unexpected(new Error("QEMU closed its QMP socket")));
    this.watchTimer = setInterval(() => void check(), WATCH_INTERVAL_MS);
    this.watchTimer.unref();
  }

  /** Something died that should not have. Boot: abort it. Running: fail the VM. Else: expected. */
  private unexpected(err: Error): void {
    if (this.state === "starting") {
      if (!this.bootAbort.signal.aborted) this.bootAbort.abort(err);
      return;
    }
    if (this.state !== "running") return;
    this.sm.to("failed");
    void this.explain(err).then((cause) => {
      const error = this.failure(`VM ${this.id} failed`, cause);
      this.log.error("VM failed", { error: error.message });
      // A VM that lost a device backend (virtiofsd, vhost-device-vsock) may still run, and its
      // guest keeps the stdio connections open that the cleanup steps wait to close: kill it first.
      if (this.qemu && !this.qemu.exit) this.qemu.process.kill("SIGKILL");
      return this.finish("failed", error);
    });
  }

  /**
   * QEMU dying shows up first as a closed QMP socket or vsock connection: wait a moment for its
   * exit status, and name that as the cause when it comes.
   */
  private async explain(err: unknown): Promise<unknown> {
    const qemu = this.qemu;
    if (!qemu) return err;
    const exit = qemu.exit ?? (await Promise.race([qemu.exited, sleep(200).then(() => undefined)]));
    return exit ? new Error(`QEMU exited (${describeExit(exit)})`, { cause: err }) : err;
  }

  /** An error with the evidence attached; read before cleanup deletes the logs. */
  private failure(what: string, cause: unknown): VmFailedError {
    const reason = cause instanceof Error ? cause.message : String(cause);
    const consoleTail = tailFile(this.files.console, 3000);
    const qemuTail = tailFile(this.files.qemuStderr, 2000);
    const vsockdTail = tailFile(this.files.vsockdStderr, 1000);
    let msg = `${what}: ${reason}`;
    const mentions = (p: string) => qemuTail.includes(p) || consoleTail.includes(p);
    // QEMU names the kernel file only sometimes ("Error while loading elf kernel" does not).
    if (mentions(this.spec.kernel) || /\bkernel\b/i.test(qemuTail))
      msg += `\n(kernel ${this.spec.kernel}: rebuild with \`${KERNEL_BUILD_COMMAND}\`)`;
    if (mentions(this.spec.rootImage))
      msg += `\n(guest image ${this.spec.rootImage}: rebuild with \`${GUEST_BUILD_COMMAND}\`)`;
    if (qemuTail) msg += `\n--- QEMU stderr (tail) ---\n${qemuTail}`;
    if (vsockdTail) msg += `\n--- vhost-device-vsock stderr (tail) ---\n${vsockdTail}`;
    msg += consoleTail
      ? `\n--- guest console (tail) ---\n${consoleTail}`
      : "\n--- guest console is empty ---";
    return new VmFailedError(msg, consoleTail, qemuTail, { cause });
  }

  // ---- teardown ---------------------------------------------------------------------------

  /** Releases everything (once) and settles `exited`. */
  private finish(state: "stopped" | "failed", error: Error | undefined): Promise<VmExit> {
    this.ending ??= (async () => {
      if (this.watchTimer) clearInterval(this.watchTimer);
      let exit: VmExit = error ? { state, error } : { state };
      const failures = (await this.tracker?.stack.run()) ?? [];
      if (this.ownLedger) {
        // Entries left by failed steps stay on disk for `beetroot gc`; closing must not stop us
        // from settling `exited`.
        await this.ownLedger.close().catch((err: unknown) =>
          failures.push({
            step: "ledger-close",
            error: err instanceof Error ? err : new Error(String(err)),
          }),
        );
      }
      if (failures.length) {
        const msg = failures.map((f) => `${f.step}: ${f.error.message}`).join("; ");
        this.log.error("VM cleanup incomplete; `beetroot gc` will retry", { error: msg });
        exit = {
          state: "failed",
          error: new Error(`cleanup of VM ${this.id} incomplete: ${msg}`, { cause: error }),
        };
      }
      if (this.state === "stopping") this.sm.to(exit.state);
      this.resolveExited(exit);
      return exit;
    })();
    return this.ending;
  }

  async stop(opts: { timeoutMs?: number } = {}): Promise<VmExit> {
    if (this.state === "starting") {
      this.bootAbort.abort(new StopRequested("stop"));
      return this.exited;
    }
    if (this.state !== "running") return this.ending ?? this.exited;
    if (opts.timeoutMs === 0) return this.kill();
    this.sm.to("stopping");
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    const qemu = this.qemu!;
    // 1. vminitd stops its processes and powers off (QEMU exits: -no-reboot).
    try {
      await this.guest
        .service(System)
        .shutdown({ graceSeconds: Math.max(1, Math.floor(timeoutMs / 2000)) }, { timeoutMs: timeoutMs / 2 });
      await Promise.race([qemu.exited, sleep(Math.max(deadline - Date.now(), 0))]);
    } catch (err) {
      this.log.warn("guest shutdown failed; asking QEMU to quit", { error: (err as Error).message });
    }
    // 2. QEMU quits (instant for a guest that ignored us).
    if (!qemu.exit) {
      await this.qmp?.execute("quit", undefined, 2000).catch(() => {});
      await Promise.race([qemu.exited, sleep(2000)]);
    }
    // 3. The cleanup stack kills whatever is left.
    return this.finish("stopped", undefined);
  }

  async kill(): Promise<VmExit> {
    if (this.state === "starting") {
      this.bootAbort.abort(new StopRequested("kill"));
      return this.exited;
    }
    if (this.state !== "running") return this.ending ?? this.exited;
    this.sm.to("stopping");
    if (this.qemu) await terminateChild(this.qemu, 0);
    return this.finish("stopped", undefined);
  }

  async connect(port: number, timeoutMs = 5000): Promise<Socket> {
    if (this.state !== "running") throw new Error(`VM ${this.id} is ${this.state}`);
    return connectVsock(this.files.vsockUds, port, timeoutMs);
  }

  /**
   * A mount at `target` made after boot: recorded before it exists (gc unmounts it after a crash),
   * released once — by the returned function or with the VM — `unbind` first, then the record.
   * `registered` sees the release before `bind` runs; a failed bind is released at once.
   */
  private async trackedMount(
    t: ResourceTracker,
    label: string,
    target: string,
    ops: {
      bind(): Promise<void>;
      unbind(): Promise<void>;
      registered?(release: () => Promise<void>): void;
      released?(): void;
    },
  ): Promise<() => Promise<void>> {
    const entry = await t.ledger.record({ kind: "mount", path: target }, label);
    let releasing: Promise<void> | undefined;
    const release = () => {
      releasing ??= (async () => {
        await ops.unbind();
        await t.ledger.release(entry);
        ops.released?.();
      })();
      return releasing;
    };
    ops.registered?.(release);
    t.defer(label, release);
    try {
      await ops.bind();
    } catch (err) {
      await release().catch(() => {});
      throw err;
    }
    return release;
  }

  async shareFile(name: string, hostPath: string): Promise<void> {
    const t = this.tracker;
    if (this.state !== "running" || !t) throw new Error(`VM ${this.id} is ${this.state}`);
    checkSharedName(name);
    if (this.shared.has(name)) throw new Error(`a disk named ${name} is already shared with VM ${this.id}`);
    checkSharedSource(hostPath);
    const target = join(this.files.diskShare, name);
    await this.trackedMount(t, `share-${name}`, target, {
      bind: () =>
        bindFileReadOnly(hostPath, target).catch((err: unknown) => {
          throw new Error(`sharing ${hostPath} with VM ${this.id} as ${name}: ${(err as Error).message}`);
        }),
      unbind: () => unbindFile(target),
      registered: (release) => this.shared.set(name, release),
      released: () => this.shared.delete(name),
    });
  }

  /** Binds a volume into the share as `name` (internal/volumes). */
  async addVolume(name: string, volume: Volume): Promise<() => Promise<void>> {
    const t = this.tracker;
    if (this.state !== "running" || !t) throw new Error(`VM ${this.id} is ${this.state}`);
    if (!this.spec.volumes) throw new Error(`VM ${this.id} was started without a volume share`);
    return this.trackedMount(t, `volume-${name}`, join(this.files.volumes.share, name), {
      bind: () => bindVolume(this.files.volumes, name, volume),
      unbind: () => unbindVolume(this.files.volumes, name, volume.kind),
    });
  }

  async unshareFile(name: string): Promise<void> {
    await this.shared.get(name)?.();
  }

  async listen(port: number): Promise<VsockListener> {
    if (this.state !== "running" || !this.tracker) throw new Error(`VM ${this.id} is ${this.state}`);
    return this.tracker.acquire(
      `vsock-listener-${port}`,
      { kind: "socket", path: `${this.files.vsockUds}_${port}` },
      () => VsockListener.listen(this.files.vsockUds, port),
      (l) => l.close(),
    );
  }
}
