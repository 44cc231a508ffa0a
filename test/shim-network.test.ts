import {
  existsSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  unlinkSync,
  writeFileSync,
} from "node:fs";
import { get } from "node:http";
import { join } from "node:path";
import { execa } from "execa";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { type BeetrootPaths, beetrootPaths } from "../internal/config/paths.ts";
import { CniRuntime } from "../internal/network/cni/invoke.ts";
import { createNetns, managedNetnsPath, removeNetns } from "../internal/network/netns.ts";
import { managedNetnsName } from "../internal/network/network.ts";
import { podVmId, vmLedgerOwner } from "../internal/shim/pod-id.ts";
import { listOwners } from "../internal/state/ledger.ts";
import {
  type ContainerdVersion,
  type PrivateContainerd,
  REPO,
  shimPidsOf,
  startContainerd,
} from "./fixtures/containerd.ts";
import { busyboxImage } from "./fixtures/oci-image.ts";
import { missingShimPrerequisites, removeContainer, taskStatus, waitFor } from "./fixtures/shim-e2e.ts";
import { skipReason } from "./fixtures/skip.ts";
import {
  leakSnapshot,
  missingNetworkCapability,
  native,
  type TestNetwork,
  testNetwork,
  withRtnl,
} from "./network-support.ts";
import { missingVmAssets } from "./vm-support.ts";

/**
 * The pod network end to end through containerd: `ctr run` containers in beetroot VMs on a
 * private CNI network (own conf dir through BEETROOT_CNI_CONF_DIR, own bridge and 10.124.x range,
 * DNS in the CNI result), private beetroot run/lib dirs (so ledgers and `beetroot gc` see only this
 * suite). Proved from the host and from inside the containers: the CNI address on eth0, the
 * gateway answering ping, TCP served to the host, resolv.conf from the CNI result; ten at once;
 * thirty create/delete cycles; a SIGKILLed shim cleaned up by `delete` and by `beetroot gc`;
 * --net-host and broken CNI configs refused with precise errors and nothing left behind.
 */
const IMAGE = "docker.io/beetroot/busybox:net";
const RT = ["--runtime", "io.containerd.beetroot.v1"];
/** Small VMs: ten of them boot at once under TCG on two cores. */
const SMALL_VM = ["--annotation", "io.beetroot.vm.memory_mib=256"];
const HTTP_PORT = 8080;
/**
 * Leak counters of the suite's own CNI network. leakSnapshot's `netns` counts every `beetroot-*`
 * namespace on the host (other suites' VMs too); each container's own managed namespace is checked
 * exactly by containerLeftovers.
 */
const CLEAN = { leases: 0, iptablesRules: 0, nftRules: 0, hostVethsOnBridge: 0 };

async function networkLeaks(s: Suite, ids: readonly string[]) {
  const cniIds = ids.flatMap((id) => [id, podVmId(s.c.address, "default", id)]);
  const { netns: _anySuite, ...own } = await leakSnapshot(s.net, cniIds);
  return own;
}

const why = skipReason(
  import.meta.url,
  missingShimPrerequisites(),
  missingNetworkCapability(),
  missingVmAssets(),
);

/** The IPv4 address (CIDR) of eth0 in the container, from busybox `ip`. */
async function containerAddress(c: PrivateContainerd, id: string): Promise<string> {
  const r = await c.ctr(
    ["task", "exec", "--exec-id", `addr-${id}`, id, "ip", "-4", "-o", "addr", "show", "eth0"],
    {
      timeoutMs: 120_000,
    },
  );
  const m = /inet (\d+\.\d+\.\d+\.\d+\/\d+)/.exec(String(r.stdout));
  if (!m?.[1]) throw new Error(`no IPv4 address on eth0 of ${id}: ${r.stdout}${r.stderr}`);
  return m[1];
}

function httpGet(host: string, port: number, path: string, timeoutMs = 20_000): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = get({ host, port, path, timeout: timeoutMs }, (res) => {
      let body = "";
      res.setEncoding("utf8");
      res.on("data", (d: string) => {
        body += d;
      });
      res.on("end", () => resolve(body));
    });
    req.on("timeout", () => req.destroy(new Error(`GET http://${host}:${port}${path}: timed out`)));
    req.on("error", reject);
  });
}

/** An HTTP server on HTTP_PORT in the container serving its own name. */
function httpdArgs(id: string): string[] {
  return [
    "sh",
    "-c",
    `mkdir -p /www && echo hello-from-${id} > /www/index.html && exec httpd -f -p ${HTTP_PORT} -h /www`,
  ];
}

interface Suite {
  c: PrivateContainerd;
  net: TestNetwork;
  paths: BeetrootPaths;
  root: string;
  env: NodeJS.ProcessEnv;
}

/**
 * The namespace beetroot makes for a `ctr run` container: named after its VM's ledger owner and the
 * VM id, which is also the CNI container id (unique on the host, unlike a ctr id).
 */
function podNetns(c: PrivateContainerd, id: string): string {
  const vm = podVmId(c.address, "default", id);
  return managedNetnsPath(managedNetnsName(vmLedgerOwner(vm), vm));
}

/** Everything one container could leave: its VM's ledger and processes, its managed namespace. */
function containerLeftovers(s: Suite, ids: readonly string[]) {
  return {
    owners: listOwners(s.paths),
    netns: ids.filter((id) => existsSync(podNetns(s.c, id))),
    runDirs: existsSync(join(s.paths.runDir, "vm")) ? readdirSync(join(s.paths.runDir, "vm")) : [],
    processes: processesMentioning(s.root),
  };
}
const NO_LEFTOVERS = { owners: [], netns: [], runDirs: [], processes: [] };

/** The private containerd's own pid (its argv names its config in the suite's dir). */
function containerdPidOf(c: PrivateContainerd): number {
  const pids = processesMentioning(join(c.dir, "config.toml"));
  if (pids.length !== 1) throw new Error(`expected one containerd for ${c.dir}, found ${pids.join(",")}`);
  return pids[0]!;
}

function processesMentioning(needle: string): number[] {
  const out: number[] = [];
  for (const p of readdirSync("/proc")) {
    if (!/^\d+$/.test(p) || Number(p) === process.pid) continue;
    try {
      if (readFileSync(`/proc/${p}/cmdline`, "utf8").includes(needle)) out.push(Number(p));
    } catch {}
  }
  return out;
}

async function expectClean(s: Suite, ids: readonly string[]): Promise<void> {
  await waitFor(
    "VMs and their networks to be released",
    () => {
      const l = containerLeftovers(s, ids);
      return l.owners.length === 0 && l.netns.length === 0 && l.processes.length === 0;
    },
    60_000,
  ).catch(() => {});
  expect(containerLeftovers(s, ids)).toEqual(NO_LEFTOVERS);
  expect(await networkLeaks(s, ids)).toEqual(CLEAN);
}

const versions: ContainerdVersion[] = ["2.1", "1.7"];

for (const version of versions) {
  describe.skipIf(why !== undefined)(`pod network through containerd ${version}`, () => {
    const s = {} as Suite;

    beforeAll(async () => {
      s.root = mkdtempSync(`/tmp/bsn${version.replace(".", "")}-`);
      s.net = testNetwork(`sn${version.replace(".", "")}`, version === "2.1" ? 61 : 62);
      const config = join(s.root, "config.toml");
      // TCG without a KVM probe; ten VMs booting at once on two cores need more than 30 s.
      writeFileSync(config, '[vm]\naccel = "tcg"\nboot_timeout_ms = 180000\n');
      s.env = {
        BEETROOT_CNI_CONF_DIR: s.net.confDir,
        BEETROOT_RUN_DIR: join(s.root, "run"),
        BEETROOT_LIB_DIR: join(s.root, "lib"),
        BEETROOT_CONFIG: config,
      };
      s.paths = beetrootPaths({ ...process.env, ...s.env });
      s.c = await startContainerd({ version, shim: "sea", env: s.env });
      writeFileSync(join(s.c.dir, "img.tar"), busyboxImage(IMAGE));
      await s.c.ctr(["images", "import", join(s.c.dir, "img.tar")]);
    });

    afterAll(async () => {
      await s.c?.stop();
      // Whatever a failed test left: the product's own gc, with this suite's dirs.
      if (s.root) {
        await execa("node", [join(REPO, "dist", "beetroot.mjs"), "gc"], {
          env: { ...process.env, ...s.env },
          reject: false,
        });
        rmSync(s.root, { recursive: true, force: true });
      }
      if (s.net) rmSync(s.net.confDir, { recursive: true, force: true });
    });

    it("a ctr run container has its CNI address, reaches its gateway, serves TCP to the host, and has the CNI DNS", async () => {
      const { c, net } = s;
      const id = "net1";
      const t0 = performance.now();
      await c.ctr(["run", "-d", ...RT, IMAGE, id, ...httpdArgs(id)]);
      try {
        await waitFor(`${id} running`, async () => (await taskStatus(c, id)) === "RUNNING");
        const cidr = await containerAddress(c, id);
        const readyMs = performance.now() - t0;
        expect(cidr).toMatch(new RegExp(`^${net.subnet.split(".").slice(0, 3).join("\\.")}\\.\\d+/24$`));
        const ip = cidr.split("/")[0] ?? "";

        const ping = await c.ctr(
          ["task", "exec", "--exec-id", "ping", id, "ping", "-c", "2", "-W", "10", net.gateway],
          {
            reject: false,
          },
        );
        expect(ping.exitCode, `${ping.stdout}${ping.stderr}`).toBe(0);
        expect(String(ping.stdout)).toMatch(/2 packets received/);

        const route = await c.ctr(["task", "exec", "--exec-id", "route", id, "ip", "route"]);
        expect(String(route.stdout)).toContain(`default via ${net.gateway} dev eth0`);

        const resolv = await c.ctr(["task", "exec", "--exec-id", "resolv", id, "cat", "/etc/resolv.conf"]);
        expect(String(resolv.stdout)).toContain("nameserver 10.124.0.53");
        expect(String(resolv.stdout)).toMatch(/search pod\.test/);
        expect(String(resolv.stdout)).toMatch(/options ndots:2/);

        const t1 = performance.now();
        expect(await httpGet(ip, HTTP_PORT, "/index.html")).toBe(`hello-from-${id}\n`);
        console.log(
          `containerd ${version}: ctr run -d → eth0 ${cidr} answered in ${readyMs.toFixed(0)} ms; host → container HTTP ${(performance.now() - t1).toFixed(0)} ms`,
        );

        // The host side as the network layer built it: a managed namespace for this container.
        const vm = podVmId(c.address, "default", id);
        expect(existsSync(podNetns(c, id))).toBe(true);
        expect(listOwners(s.paths)).toEqual([vmLedgerOwner(vm)]);
      } finally {
        await removeContainer(c, id, { stopWaitMs: 60_000, deleteTimeoutMs: 60_000 });
      }
      await expectClean(s, [id]);
    });

    it("a container given an existing network namespace (CRI style) attaches to it and leaves it as it was", async () => {
      const { c, net } = s;
      const id = "attach1";
      const n = await native();
      const ns = `/run/netns/btest-snattach-${version.replace(".", "")}-${process.pid}`;
      const cni = new CniRuntime();
      const rt = { containerId: `cri-${id}`, netns: ns, ifname: "eth0" };
      createNetns(n, ns);
      try {
        const added = await cni.add(net.conf.list, rt);
        try {
          const cidr = added.ips[0]?.address ?? "";
          await c.ctr(["run", "-d", "--with-ns", `network:${ns}`, ...RT, IMAGE, id, ...httpdArgs(id)]);
          try {
            await waitFor(`${id} running`, async () => (await taskStatus(c, id)) === "RUNNING");
            expect(await containerAddress(c, id)).toBe(cidr);
            expect(await httpGet(cidr.split("/")[0] ?? "", HTTP_PORT, "/index.html")).toBe(
              `hello-from-${id}\n`,
            );
            // No namespace of beetroot's own: the VM sits on the one it was given.
            expect(existsSync(podNetns(c, id))).toBe(false);
          } finally {
            await removeContainer(c, id, { stopWaitMs: 60_000, deleteTimeoutMs: 60_000 });
          }
          // The VM's own resources are gone; CRI's attachment (its lease, veth, rules) stays until CRI's DEL.
          await waitFor("the VM to be released", () => containerLeftovers(s, [id]).owners.length === 0);
          expect(containerLeftovers(s, [id])).toEqual(NO_LEFTOVERS);
          // The namespace is as CNI made it: eth0 with its address, no TAP, no tc redirect.
          const after = withRtnl(n, ns, (r) => {
            const links = r.links();
            const e = links.find((l) => l.name === "eth0");
            return {
              eth0: e !== undefined,
              ingress: e ? r.hasIngressQdisc(e) : undefined,
              taps: links.filter((l) => l.kind === "tun").length,
              addresses: r.addresses().filter((a) => a.index === e?.index && a.family === 4).length,
            };
          });
          expect(after).toEqual({ eth0: true, ingress: false, taps: 0, addresses: 1 });
        } finally {
          await cni.del(net.conf.list, rt);
        }
      } finally {
        removeNetns(n, ns);
      }
      expect(await networkLeaks(s, [id, `cri-${id}`])).toEqual(CLEAN);
    });

    it("refuses --net-host with InvalidArgument saying a VM cannot share the host's network stack", async () => {
      const { c } = s;
      const r = await c.ctr(["run", "--rm", "--net-host", ...RT, IMAGE, "hostnet", "true"], {
        reject: false,
      });
      expect(r.exitCode).not.toBe(0);
      expect(String(r.stderr)).toMatch(/cannot share the host's network stack/);
      // containerd hands the gRPC code to ctr as an errdefs class but prints only the text; the code
      // mapping (NetworkError InvalidArgument → 3) is unit-tested in internal/shim/qemu-vmm.test.ts.
      await c.ctr(["containers", "delete", "hostnet"], { reject: false });
      await expectClean(s, ["hostnet"]);
    });
    // The scale cases run on 2.1 only: they exercise the shim and the network, not containerd's
    // shim protocol, and each costs a minute or two of TCG boots.
    if (version === "2.1")
      it("10 containers started in parallel get distinct addresses and all serve the host", async () => {
        const { c } = s;
        const ids = Array.from({ length: 10 }, (_, i) => `par${i}`);
        const t0 = performance.now();
        const runs = await Promise.all(
          ids.map((id) =>
            c.ctr(["run", "-d", ...RT, ...SMALL_VM, IMAGE, id, ...httpdArgs(id)], {
              reject: false,
              timeoutMs: 300_000,
            }),
          ),
        );
        try {
          for (const [i, r] of runs.entries()) expect(r.exitCode, `${ids[i]}: ${r.stderr}`).toBe(0);
          const startedMs = performance.now() - t0;
          const addresses = await Promise.all(ids.map((id) => containerAddress(c, id)));
          expect(new Set(addresses).size).toBe(ids.length);
          const bodies = await Promise.all(
            addresses.map((a) => httpGet(a.split("/")[0] ?? "", HTTP_PORT, "/index.html", 60_000)),
          );
          expect(bodies).toEqual(ids.map((id) => `hello-from-${id}\n`));
          console.log(
            `containerd ${version}: 10 parallel ctr run -d: all started in ${(startedMs / 1000).toFixed(1)} s, ` +
              `all serving in ${((performance.now() - t0) / 1000).toFixed(1)} s (${addresses.join(" ")})`,
          );
        } finally {
          await Promise.all(
            ids.map((id) => removeContainer(c, id, { stopWaitMs: 60_000, deleteTimeoutMs: 60_000 })),
          );
        }
        await expectClean(s, ids);
      });

    if (version === "2.1")
      it("30 create/delete cycles leave no TAP, namespace, lease, rule or ledger record", async () => {
        const { c } = s;
        const ids = Array.from({ length: 30 }, (_, i) => `cyc${i}`);
        const t0 = performance.now();
        for (const id of ids) {
          // The container reports its address: each cycle really was on the network.
          const r = await c.ctr(
            ["run", "--rm", ...RT, ...SMALL_VM, IMAGE, id, "ip", "-4", "-o", "addr", "show", "eth0"],
            {
              reject: false,
              timeoutMs: 120_000,
            },
          );
          expect(r.exitCode, `${id}: ${r.stderr}`).toBe(0);
          expect(String(r.stdout)).toMatch(/inet 10\.124\./);
        }
        const totalMs = performance.now() - t0;
        console.log(
          `containerd ${version}: 30 ctr run --rm cycles on the pod network: ${(totalMs / 1000).toFixed(1)} s (${(totalMs / 30).toFixed(0)} ms each)`,
        );
        await waitFor("shims to exit", () => shimPidsOf(c.address).length === 0, 30_000);
        await expectClean(s, ids);
        expect(String((await c.ctr(["containers", "ls", "-q"])).stdout).trim()).toBe("");
      });

    it("a VM that dies under a running container (QEMU SIGKILLed) takes its pod network with it", async () => {
      const { c } = s;
      const id = "qemukill";
      await c.ctr(["run", "-d", ...RT, ...SMALL_VM, IMAGE, id, "sleep", "600"]);
      try {
        await waitFor(`${id} running`, async () => (await taskStatus(c, id)) === "RUNNING");
        const vm = podVmId(c.address, "default", id);
        const netns = podNetns(c, id);
        expect(existsSync(netns)).toBe(true);
        const qemu = processesMentioning(join(s.paths.runDir, "vm", vm)).filter((p) =>
          readFileSync(`/proc/${p}/cmdline`, "utf8").startsWith("/usr/bin/qemu-system"),
        );
        expect(qemu).toHaveLength(1);
        process.kill(qemu[0]!, "SIGKILL");
        await waitFor(`${id} stopped`, async () => (await taskStatus(c, id)) === "STOPPED");
        // The shim is alive and released the network by itself, before anyone deletes the task.
        await waitFor("the pod network to be released", () => !existsSync(netns), 30_000);
        expect(shimPidsOf(c.address).length).toBeGreaterThan(0);
        expect(await networkLeaks(s, [id])).toEqual(CLEAN);
      } finally {
        await removeContainer(c, id, { stopWaitMs: 60_000, deleteTimeoutMs: 60_000 });
      }
      await expectClean(s, [id]);
    });

    for (const cleaner of ["delete", "gc"] as const) {
      it(`kill -9 of the shim mid-run: ${cleaner === "delete" ? "containerd's delete" : "beetroot gc"} releases its network`, async () => {
        const { c } = s;
        const id = `kill${cleaner}`;
        await c.ctr(["run", "-d", ...RT, ...SMALL_VM, IMAGE, id, "sleep", "600"]);
        await waitFor(`${id} running`, async () => (await taskStatus(c, id)) === "RUNNING");
        const netns = podNetns(c, id);
        expect(existsSync(netns)).toBe(true);
        const bundle = join(c.dir, "state", "io.containerd.runtime.v2.task", "default", id);
        const shimPid = Number(readFileSync(join(bundle, "shim.pid"), "utf8"));
        // containerd runs the shim's `delete` as soon as it sees the shim die; for gc it must not
        // see that yet: stop containerd while the shim is killed and gc runs, resume it after.
        const containerdPid = containerdPidOf(c);
        if (cleaner === "gc") process.kill(containerdPid, "SIGSTOP");
        try {
          process.kill(shimPid, "SIGKILL");
          if (cleaner === "gc") {
            await waitFor("the shim to be gone", () => !existsSync(`/proc/${shimPid}`), 10_000);
            const gc = await execa("node", [join(REPO, "dist", "beetroot.mjs"), "gc"], {
              env: { ...process.env, ...s.env },
              reject: false,
            });
            expect(gc.exitCode, `${gc.stdout}${gc.stderr}`).toBe(0);
            console.log(`beetroot gc after kill -9 of the shim:\n${gc.stdout}${gc.stderr}`);
            expect(containerLeftovers(s, [id])).toEqual(NO_LEFTOVERS);
            expect(await networkLeaks(s, [id])).toEqual(CLEAN);
          }
        } finally {
          if (cleaner === "gc") process.kill(containerdPid, "SIGCONT");
        }
        await expectClean(s, [id]);
        await c.ctr(["task", "delete", id], { reject: false });
        await c.ctr(["containers", "delete", id], { reject: false });
        expect(await taskStatus(c, id)).toBeUndefined();
      });
    }

    // The 30 `ctr run --rm` cycles above tear down after Delete answered, while containerd already
    // deletes the bundle. A SIGTERM (containerd's or the host's shutdown, these suites' own
    // containerd stop) is the other way there: the shim closes its socket first, containerd takes
    // it for dead and deletes its bundle — the shim's working directory — while the shim still
    // stops its VM. CNI plugins spawned from there never ran (ENOENT), so every such teardown kept
    // its lease and masquerade rules.
    it("SIGTERM to the shim of a running container: the shim's own teardown releases lease, rules and ledger", async () => {
      const { c } = s;
      const id = "shimterm";
      await c.ctr(["run", "-d", ...RT, ...SMALL_VM, IMAGE, id, "sleep", "600"]);
      try {
        await waitFor(`${id} running`, async () => (await taskStatus(c, id)) === "RUNNING");
        expect(existsSync(podNetns(c, id))).toBe(true);
        expect((await networkLeaks(s, [id])).leases).toBe(1);
        const bundle = join(c.dir, "state", "io.containerd.runtime.v2.task", "default", id);
        const shimPid = Number(readFileSync(join(bundle, "shim.pid"), "utf8"));
        process.kill(shimPid, "SIGTERM");
        await waitFor("the shim to exit", () => !existsSync(`/proc/${shimPid}`), 60_000);
        // containerd cleaned the shim up as a dead one (the case under test), bundle and all.
        await waitFor("containerd to remove the bundle", () => !existsSync(bundle), 30_000);
        // No waiting and no gc: what the shim did not release before exiting stays leaked.
        expect(containerLeftovers(s, [id])).toEqual(NO_LEFTOVERS);
        expect(await networkLeaks(s, [id])).toEqual(CLEAN);
      } finally {
        await removeContainer(c, id, { stopWaitMs: 10_000, deleteTimeoutMs: 60_000 });
      }
    });

    it("a broken CNI config and a missing plugin are precise errors, and nothing is left behind", async () => {
      const { c, net } = s;
      // The lexically first file of the conf dir is the network (like containerd's CRI).
      const broken = join(net.confDir, "00-broken.conflist");
      const cases: [string, string, RegExp][] = [
        ["cnibad", '{"cniVersion": "1.0.0", "name": "x", "plugins": [', /00-broken\.conflist/],
        [
          "cnimiss",
          JSON.stringify({ cniVersion: "1.0.0", name: "miss", plugins: [{ type: "no-such-cni-plugin" }] }),
          /CNI plugin "no-such-cni-plugin" not found/,
        ],
      ];
      try {
        for (const [id, text, message] of cases) {
          writeFileSync(broken, text);
          const r = await c.ctr(["run", "--rm", ...RT, IMAGE, id, "true"], { reject: false });
          expect(r.exitCode, id).not.toBe(0);
          expect(String(r.stderr), id).toMatch(message);
          await c.ctr(["containers", "delete", id], { reject: false });
          await expectClean(s, [id]);
        }
      } finally {
        if (existsSync(broken)) unlinkSync(broken);
      }
    });

    it("an exhausted IP range is a precise error and the VM that did not fit leaves nothing", async () => {
      const { c, net } = s;
      const one = join(net.confDir, "00-one-address.conflist");
      const name = `${net.name}-one`;
      const last = `${net.subnet.split(".").slice(0, 3).join(".")}.250`;
      const list = JSON.parse(readFileSync(net.conf.source, "utf8")) as {
        name: string;
        plugins: { ipam?: { ranges: Record<string, string>[][] } }[];
      };
      list.name = name;
      const bridge = list.plugins[0];
      if (bridge?.ipam) bridge.ipam.ranges = [[{ subnet: net.subnet, rangeStart: last, rangeEnd: last }]];
      writeFileSync(one, JSON.stringify(list));
      const ipamDir = join("/var/lib/cni/networks", name);
      try {
        await c.ctr(["run", "-d", ...RT, ...SMALL_VM, IMAGE, "full1", "sleep", "600"]);
        try {
          await waitFor("full1 running", async () => (await taskStatus(c, "full1")) === "RUNNING");
          expect(await containerAddress(c, "full1")).toBe(`${last}/24`);
          const r = await c.ctr(["run", "--rm", ...RT, IMAGE, "full2", "true"], { reject: false });
          expect(r.exitCode).not.toBe(0);
          expect(String(r.stderr)).toMatch(/no IP addresses available/);
          await c.ctr(["containers", "delete", "full2"], { reject: false });
          expect(containerLeftovers(s, ["full2"]).netns).toEqual([]);
        } finally {
          await removeContainer(c, "full1", { stopWaitMs: 60_000, deleteTimeoutMs: 60_000 });
        }
        await expectClean(s, ["full1", "full2"]);
        expect(readdirSync(ipamDir).filter((f) => /^\d+\.\d+\.\d+\.\d+$/.test(f))).toEqual([]);
      } finally {
        unlinkSync(one);
        rmSync(ipamDir, { recursive: true, force: true });
      }
    });
  });
}
