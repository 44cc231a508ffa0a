import { randomUUID } from "node:crypto";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { join } from "node:path";
import type { MessageInitShape } from "@bufbuild/protobuf";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  ContainerState,
  NamespaceMode,
  type PodSandboxConfigSchema,
} from "../api/gen/k8s/cri-api/runtime/v1/api_pb.ts";
import { type BeetrootPaths, beetrootPaths } from "../internal/config/paths.ts";
import { loadHostDeps } from "../internal/hostdeps/index.ts";
import { podVmId } from "../internal/shim/pod-id.ts";
import { listOwners } from "../internal/state/ledger.ts";
import { type ContainerdVersion, REPO, shimPidsOf } from "./fixtures/containerd.ts";
import { CriClient, runtime } from "./fixtures/cri-client.ts";
import {
  BEETROOT_HANDLER,
  CRI_NAMESPACE,
  type CriContainerd,
  startCriContainerd,
} from "./fixtures/cri-containerd.ts";
import { busyboxLayer, ociArchive } from "./fixtures/oci-image.ts";
import { missingShimPrerequisites, processesMatching, waitFor } from "./fixtures/shim-e2e.ts";
import { skipReason } from "./fixtures/skip.ts";
import { leakSnapshot, missingNetworkCapability, type TestNetwork, testNetwork } from "./network-support.ts";
import { missingVmAssets } from "./vm-support.ts";

/**
 * beetroot driven the way kubelet drives it: containerd 2.1's CRI plugin, a gRPC CRI client
 * (test/fixtures/cri-client.ts), RuntimeClass handler "beetroot". One pod: RunPodSandbox boots
 * the VM (the sandbox task), app containers join it through the same shim, CRI's own CNI gives
 * the pod its address (the shim attaches the VM to CRI's namespace), output lands in the CRI
 * log files, ExecSync runs in the VM, and after Stop/Remove nothing is left. docs/cri.md.
 */
const PAUSE_IMAGE = "docker.io/beetroot/pause:cri-test";
const APP_IMAGE = "docker.io/beetroot/busybox:cri-test";
/** What a line of a CRI container log looks like: RFC 3339 time, stream, P(artial)/F(ull), text. */
const CRI_LOG_LINE = /^\S+ (stdout|stderr) ([PF]) (.*)$/;

const why = skipReason(
  import.meta.url,
  missingShimPrerequisites(),
  missingNetworkCapability(),
  missingVmAssets(),
);

/** The lines a CRI log file holds so far, per stream (partial lines joined). */
function criLog(path: string): { stdout: string[]; stderr: string[] } {
  const out = { stdout: [] as string[], stderr: [] as string[] };
  if (!existsSync(path)) return out;
  let partial = { stdout: "", stderr: "" };
  for (const line of readFileSync(path, "utf8").split("\n")) {
    if (line === "") continue;
    const m = CRI_LOG_LINE.exec(line);
    if (!m) throw new Error(`not a CRI log line in ${path}: ${JSON.stringify(line)}`);
    const stream = m[1] as "stdout" | "stderr";
    if (m[2] === "P") {
      partial = { ...partial, [stream]: partial[stream] + m[3] };
    } else {
      out[stream].push(partial[stream] + m[3]);
      partial = { ...partial, [stream]: "" };
    }
  }
  return out;
}

function processesOf(needles: readonly string[]): number[] {
  return [...new Set(needles.flatMap((n) => processesMatching(n)))].filter((p) => p !== process.pid);
}

/** What kubelet sends for a v1 Pod and its containers: pid CONTAINER (the PodSpec default), net and ipc POD. */
const KUBELET_NAMESPACES = {
  network: NamespaceMode.POD,
  pid: NamespaceMode.CONTAINER,
  ipc: NamespaceMode.POD,
} as const;

const ms = (t0: number) => Math.round(performance.now() - t0);

const cases: { version: ContainerdVersion; third: number }[] = [
  { version: "2.1", third: 71 },
  { version: "1.7", third: 72 },
];

for (const { version, third } of cases) {
  describe.skipIf(why !== undefined)(
    `beetroot through containerd ${version}'s CRI plugin (RuntimeClass handler)`,
    () => {
      let c: CriContainerd;
      let cri: CriClient;
      let net: TestNetwork;
      let root: string;
      let paths: BeetrootPaths;
      let env: NodeJS.ProcessEnv;
      const qemu = () => loadHostDeps().qemu;
      const timings: Record<string, number> = {};
      /** Set when the pod test passed: otherwise containerd's dir (its log, the shim's log lines) is kept. */
      let podPassed = false;

      beforeAll(async () => {
        root = mkdtempSync("/tmp/bcrt-");
        net = testNetwork(`cri${version.replace(".", "")}`, third);
        const config = join(root, "config.toml");
        // TCG without a KVM probe (this host's KVM is broken); the host is shared, so boots are slow.
        writeFileSync(config, '[vm]\naccel = "tcg"\nboot_timeout_ms = 180000\n');
        env = {
          BEETROOT_CNI_CONF_DIR: net.confDir,
          BEETROOT_RUN_DIR: join(root, "run"),
          BEETROOT_LIB_DIR: join(root, "lib"),
          BEETROOT_CONFIG: config,
        };
        paths = beetrootPaths({ ...process.env, ...env });
        c = await startCriContainerd({
          version,
          sandboxImage: PAUSE_IMAGE,
          cniConfDir: net.confDir,
          cniBinDirs: ["/usr/lib/cni", "/opt/cni/bin"],
          env,
        });
        // The pause image: busybox-static sleeping forever (kubelet's pause does the same: nothing).
        writeFileSync(
          join(c.dir, "pause.tar"),
          ociArchive({ name: PAUSE_IMAGE, layers: [busyboxLayer()], cmd: ["/bin/sleep", "2147483647"] }),
        );
        writeFileSync(join(c.dir, "app.tar"), ociArchive({ name: APP_IMAGE, layers: [busyboxLayer()] }));
        await c.ctr(["images", "import", "--snapshotter", "overlayfs", join(c.dir, "pause.tar")]);
        await c.ctr(["images", "import", "--snapshotter", "overlayfs", join(c.dir, "app.tar")]);
        cri = new CriClient(c.address);
        // kubelet waits for RuntimeReady and NetworkReady (CRI loads the CNI conf asynchronously).
        await waitFor(
          "CRI RuntimeReady and NetworkReady",
          async () => {
            const s = await cri.call(runtime.status, {});
            return (s.status?.conditions ?? []).filter((x) => x.status).length >= 2;
          },
          60_000,
        );
      }, 180_000);

      afterAll(async () => {
        cri?.close();
        await c?.stop();
        if (root) {
          // Whatever a failed test left: the product's own gc, with this suite's dirs.
          await execa("node", [join(REPO, "dist", "beetroot.mjs"), "gc"], {
            env: { ...process.env, ...env },
            reject: false,
          });
          rmSync(root, { recursive: true, force: true });
        }
        if (c && podPassed) rmSync(c.dir, { recursive: true, force: true });
        else if (c) console.warn(`kept ${c.dir} (containerd.log holds containerd's and the shim's log)`);
        if (net) rmSync(net.confDir, { recursive: true, force: true });
        if (Object.keys(timings).length > 0)
          console.log(`containerd ${version} CRI timings (ms): ${JSON.stringify(timings)}`);
      }, 120_000);

      it("CRI reports containerd with the v1 API", async () => {
        const v = await cri.call(runtime.version, { version: "v1" });
        expect(v.runtimeName).toBe("containerd");
        expect(v.runtimeApiVersion).toBe("v1");
      });

      it("a pod: RunPodSandbox boots one VM on CRI's CNI network, app containers join it, output/exit/exec work, and removal leaves nothing", async () => {
        const uid = randomUUID();
        const logDirectory = join(root, "pods", uid);
        mkdirSync(logDirectory, { recursive: true });
        const sandboxConfig: MessageInitShape<typeof PodSandboxConfigSchema> = {
          metadata: { name: "cri-pod", uid, namespace: "default", attempt: 0 },
          hostname: "cri-pod",
          logDirectory,
          dnsConfig: { servers: [`10.124.${third}.53`], searches: ["cri.test"], options: ["ndots:3"] },
          labels: { app: "beetroot-cri-test" },
          linux: { securityContext: { namespaceOptions: KUBELET_NAMESPACES } },
        };

        // RunPodSandbox: CRI makes the netns and runs CNI, then the sandbox task boots the VM.
        let t0 = performance.now();
        const { podSandboxId: pod } = await cri.call(
          runtime.runPodSandbox,
          { config: sandboxConfig, runtimeHandler: BEETROOT_HANDLER },
          300_000,
        );
        timings.runPodSandbox = ms(t0);
        const vm = podVmId(c.address, CRI_NAMESPACE, pod);
        const removed = { containers: [] as string[], pod: false };
        try {
          const status = await cri.call(runtime.podSandboxStatus, { podSandboxId: pod, verbose: true });
          expect(status.status?.state, "sandbox ready").toBe(0);
          expect(status.status?.runtimeHandler).toBe(BEETROOT_HANDLER);
          const podIp = status.status?.network?.ip ?? "";
          expect(podIp, "the pod got an address from CRI's CNI").toMatch(
            new RegExp(`^10\\.124\\.${third}\\.\\d+$`),
          );
          const info = JSON.parse(status.info.info ?? "{}") as {
            runtimeType?: string;
            runtimeSpec?: { linux?: { namespaces?: { type: string; path?: string }[] } };
          };
          expect(info.runtimeType).toBe("io.containerd.beetroot.v1");
          const netns = info.runtimeSpec?.linux?.namespaces?.find((n) => n.type === "network")?.path ?? "";
          expect(netns, "CRI's pod netns").toMatch(/^\/var\/run\/netns\/cni-/);

          const qemus = processesMatching(vm).filter((p) =>
            readFileSync(`/proc/${p}/cmdline`, "utf8").startsWith(qemu()),
          );
          expect(qemus, "one QEMU for the pod").toHaveLength(1);

          // An app container that keeps running: kernel release, eth0's address, then sleep.
          const containerConfig = (
            name: string,
            script: string,
            mounts: { containerPath: string; hostPath: string; readonly: boolean }[] = [],
          ) => ({
            metadata: { name, attempt: 0 },
            image: { image: APP_IMAGE },
            command: ["sh", "-c", script],
            logPath: `${name}.log`,
            labels: { container: name },
            mounts,
            linux: { securityContext: { namespaceOptions: KUBELET_NAMESPACES } },
          });
          // Volumes of a container joining the running pod VM (docs/volumes.md): a writable hostPath
          // and a read-only one, bound into the VM's share after it booted.
          const dataDir = join(root, "volume-data");
          const configDir = join(root, "volume-config");
          mkdirSync(dataDir, { recursive: true });
          mkdirSync(configDir, { recursive: true });
          writeFileSync(join(dataDir, "in"), "from the host\n");
          writeFileSync(join(configDir, "setting"), "ro setting\n");
          t0 = performance.now();
          const { containerId: app } = await cri.call(
            runtime.createContainer,
            {
              podSandboxId: pod,
              config: containerConfig(
                "app",
                "echo kernel=$(uname -r); echo addr=$(ip -4 -o addr show eth0 | awk '{print $4}'); echo app-ready; exec sleep 600",
                [
                  { containerPath: "/data", hostPath: dataDir, readonly: false },
                  { containerPath: "/config", hostPath: configDir, readonly: true },
                ],
              ),
              sandboxConfig,
            },
            300_000,
          );
          timings.createContainer = ms(t0);
          t0 = performance.now();
          await cri.call(runtime.startContainer, { containerId: app }, 300_000);
          timings.startContainer = ms(t0);
          const appLog = join(logDirectory, "app.log");
          await waitFor(
            "app-ready in the app's CRI log",
            () => criLog(appLog).stdout.includes("app-ready"),
            120_000,
          );
          timings.startToOutput = ms(t0);
          const lines = criLog(appLog).stdout;
          const kernel = lines.find((l) => l.startsWith("kernel="))?.slice("kernel=".length) ?? "";
          expect(kernel, "the app ran on the guest kernel").toMatch(/-beetroot$/);
          expect(lines, "eth0 in the VM carries the pod's CNI address").toContain(`addr=${podIp}/24`);
          const appStatus = await cri.call(runtime.containerStatus, { containerId: app });
          expect(appStatus.status?.state).toBe(ContainerState.CONTAINER_RUNNING);
          expect(appStatus.status?.logPath).toBe(appLog);

          // ExecSync (kubelet's exec probes): in the VM, exit codes and the pod's DNS config come back.
          t0 = performance.now();
          const uname = await cri.call(runtime.execSync, {
            containerId: app,
            cmd: ["uname", "-r"],
            timeout: 60n,
          });
          timings.execSync = ms(t0);
          expect(uname.exitCode).toBe(0);
          expect(Buffer.from(uname.stdout).toString().trim()).toBe(kernel);
          const failing = await cri.call(runtime.execSync, {
            containerId: app,
            cmd: ["sh", "-c", "echo oops >&2; exit 7"],
            timeout: 60n,
          });
          expect(failing.exitCode).toBe(7);
          expect(Buffer.from(failing.stderr).toString()).toBe("oops\n");
          // kubelet's namespaces: a PID namespace of the container's own (its command is PID 1),
          // the pod's UTS (CRI's /proc/<pause pid>/ns paths, which name the guest's pause process).
          const ids = await cri.call(runtime.execSync, {
            containerId: app,
            cmd: ["sh", "-c", "echo $(tr '\\0' ' ' < /proc/1/cmdline)/$(hostname)"],
            timeout: 60n,
          });
          expect(Buffer.from(ids.stdout).toString()).toBe("sleep 600 /cri-pod\n");
          const resolv = await cri.call(runtime.execSync, {
            containerId: app,
            cmd: ["cat", "/etc/resolv.conf"],
            timeout: 60n,
          });
          expect(Buffer.from(resolv.stdout).toString()).toContain(`nameserver 10.124.${third}.53`);
          // Volumes: the hostPaths, and CRI's own single-file binds (/etc/hostname from the sandbox dir).
          const sh = async (script: string) => {
            const r = await cri.call(runtime.execSync, {
              containerId: app,
              cmd: ["sh", "-c", script],
              timeout: 60n,
            });
            return `${Buffer.from(r.stdout).toString()}${Buffer.from(r.stderr).toString()}exit=${r.exitCode}`;
          };
          expect(await sh("cat /data/in && echo from the pod > /data/out")).toBe("from the host\nexit=0");
          expect(readFileSync(join(dataDir, "out"), "utf8")).toBe("from the pod\n");
          expect(await sh("cat /config/setting; (echo x > /config/setting) 2>/dev/null; echo write=$?")).toBe(
            "ro setting\nwrite=1\nexit=0",
          );
          expect(readFileSync(join(configDir, "setting"), "utf8")).toBe("ro setting\n");
          expect(await sh("cat /etc/hostname")).toBe("cri-pod\nexit=0");
          // containerd 2.x's default pod sysctls (enable_unprivileged_ports/icmp) hold in the VM's
          // network namespace, which is the pod's; 1.7 sets none, leaving the kernel's 1024.
          const ports = await cri.call(runtime.execSync, {
            containerId: app,
            cmd: ["cat", "/proc/sys/net/ipv4/ip_unprivileged_port_start"],
            timeout: 60n,
          });
          expect(Buffer.from(ports.stdout).toString()).toBe(version === "2.1" ? "0\n" : "1024\n");

          // A second app container that exits on its own: its exit code and output reach CRI.
          const { containerId: oneshot } = await cri.call(
            runtime.createContainer,
            {
              podSandboxId: pod,
              config: containerConfig("oneshot", "echo oneshot on $(uname -r); exit 3"),
              sandboxConfig,
            },
            300_000,
          );
          await cri.call(runtime.startContainer, { containerId: oneshot }, 300_000);
          await waitFor(
            "oneshot to exit",
            async () =>
              (await cri.call(runtime.containerStatus, { containerId: oneshot })).status?.state ===
              ContainerState.CONTAINER_EXITED,
            120_000,
          );
          const done = await cri.call(runtime.containerStatus, { containerId: oneshot });
          expect(done.status?.exitCode).toBe(3);
          expect(criLog(join(logDirectory, "oneshot.log")).stdout).toEqual([`oneshot on ${kernel}`]);

          const stillOne = processesMatching(vm).filter((p) =>
            readFileSync(`/proc/${p}/cmdline`, "utf8").startsWith(qemu()),
          );
          expect(stillOne, "both app containers joined the sandbox's VM").toEqual(qemus);
          expect(shimPidsOf(c.address), "one shim serves the whole pod").toHaveLength(1);

          // StopContainer: sleep as the container's PID 1 ignores SIGTERM, so the grace period ends in SIGKILL.
          t0 = performance.now();
          await cri.call(runtime.stopContainer, { containerId: app, timeout: 2n }, 120_000);
          timings.stopContainer = ms(t0);
          const stopped = await cri.call(runtime.containerStatus, { containerId: app });
          expect(stopped.status?.state).toBe(ContainerState.CONTAINER_EXITED);
          expect(stopped.status?.exitCode).toBe(137);
          for (const id of [app, oneshot]) {
            await cri.call(runtime.removeContainer, { containerId: id }, 120_000);
            removed.containers.push(id);
          }
          expect(await cri.call(runtime.listContainers, { filter: { podSandboxId: pod } })).toMatchObject({
            containers: [],
          });

          t0 = performance.now();
          await cri.call(runtime.stopPodSandbox, { podSandboxId: pod }, 300_000);
          timings.stopPodSandbox = ms(t0);
          t0 = performance.now();
          await cri.call(runtime.removePodSandbox, { podSandboxId: pod }, 300_000);
          timings.removePodSandbox = ms(t0);
          removed.pod = true;

          // Nothing left: VM processes, the shim, CRI's netns, ledgers, run dirs, CNI lease and rules.
          await waitFor(
            "the pod's processes and ledger to go",
            () =>
              processesOf([vm, root]).length === 0 &&
              shimPidsOf(c.address).length === 0 &&
              listOwners(paths).length === 0,
            60_000,
          ).catch(() => {});
          expect({
            processes: processesOf([vm, root]),
            vhostDeviceVsock: processesMatching("vhost-device-vsock").filter((p) =>
              readFileSync(`/proc/${p}/cmdline`, "utf8").includes(root),
            ),
            shims: shimPidsOf(c.address),
            netns: existsSync(netns),
            ledgers: listOwners(paths),
            runDirs: existsSync(join(paths.runDir, "vm")) ? readdirSync(join(paths.runDir, "vm")) : [],
          }).toEqual({
            processes: [],
            vhostDeviceVsock: [],
            shims: [],
            netns: false,
            ledgers: [],
            runDirs: [],
          });
          const { netns: _beetrootManagedNetns, ...cniLeaks } = await leakSnapshot(net, [pod]);
          expect(cniLeaks).toEqual({ leases: 0, iptablesRules: 0, nftRules: 0, hostVethsOnBridge: 0 });
          expect((await cri.call(runtime.listPodSandbox, {})).items).toEqual([]);
          podPassed = true;
        } finally {
          if (!removed.pod) {
            for (const id of (
              await cri.call(runtime.listContainers, { filter: { podSandboxId: pod } }).catch(() => undefined)
            )?.containers ?? []) {
              if (!removed.containers.includes(id.id))
                await cri.call(runtime.removeContainer, { containerId: id.id }).catch(() => {});
            }
            await cri.call(runtime.stopPodSandbox, { podSandboxId: pod }, 300_000).catch(() => {});
            await cri.call(runtime.removePodSandbox, { podSandboxId: pod }, 300_000).catch(() => {});
          }
        }
      }, 900_000);
    },
  );
}
