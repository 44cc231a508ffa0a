import { describe, expect, it } from "vitest";
import { Code, TtrpcError } from "../../../internal/ttrpc/index.ts";
import { prepareProcess, prepareSpec, sysctlPath } from "./spec.ts";

const base = () => ({
  ociVersion: "1.2.0",
  process: { args: ["/bin/sh"], terminal: false, apparmorProfile: "cri-containerd.apparmor.d", cwd: "/" },
  root: { path: "/var/lib/containerd/…/rootfs", readonly: false },
  hostname: "c1",
  mounts: [
    { destination: "/proc", type: "proc", source: "proc" },
    {
      destination: "/etc/hosts",
      type: "bind",
      source: "/var/lib/containerd/sandboxes/x/hosts",
      options: ["rbind"],
    },
    {
      destination: "/dev/shm",
      type: "bind",
      source: "/run/containerd/sandboxes/x/shm",
      options: ["rbind", "ro"],
    },
    { destination: "/data", type: "none", source: "/guest/dir", options: ["bind"] },
  ],
  linux: {
    cgroupsPath: "kubepods-besteffort.slice:cri-containerd:c1",
    mountLabel: "system_u:object_r:container_file_t",
    namespaces: [
      { type: "pid" },
      { type: "network", path: "/var/run/netns/cni-1234" },
      { type: "ipc", path: "/proc/42/ns/ipc" },
    ],
  },
});

const exists = (p: string) => p === "/proc/42/ns/ipc" || p === "/guest/dir";
const ctx = { id: "c1", rootfs: "/run/beetroot/containers/c1/rootfs", terminal: false, exists };

function code(fn: () => unknown): number | undefined {
  try {
    fn();
  } catch (err) {
    return err instanceof TtrpcError ? err.code : -1;
  }
  return undefined;
}

describe("prepareSpec", () => {
  it("names the default personality unless the spec has one (vminitd's helpers run without ASLR)", () => {
    const r = prepareSpec(JSON.stringify(base()), ctx);
    expect((r.spec.linux as { personality?: unknown }).personality).toEqual({ domain: "LINUX" });
    expect(r.notes.join("\n")).not.toMatch(/personality/);
    const own = { ...base(), linux: { ...base().linux, personality: { domain: "LINUX32" } } };
    const r2 = prepareSpec(JSON.stringify(own), ctx);
    expect((r2.spec.linux as { personality?: unknown }).personality).toEqual({ domain: "LINUX32" });
  });

  it("makes a CRI spec true inside the VM and says what it changed", () => {
    const r = prepareSpec(JSON.stringify(base()), ctx);
    const s = r.spec as ReturnType<typeof base>;
    expect(s.root).toEqual({ path: ctx.rootfs, readonly: false });
    expect(s.process.apparmorProfile).toBeUndefined();
    expect(s.linux.mountLabel).toBeUndefined();
    expect(s.linux.namespaces).toEqual([{ type: "pid" }, { type: "ipc", path: "/proc/42/ns/ipc" }]);
    expect(s.linux.cgroupsPath).toBe("/beetroot/c1");
    expect(r.cgroupsPath).toBe("beetroot/c1");
    expect(s.mounts).toEqual([
      { destination: "/proc", type: "proc", source: "proc" },
      {
        destination: "/dev/shm",
        type: "tmpfs",
        source: "shm",
        options: ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
      },
      { destination: "/data", type: "none", source: "/guest/dir", options: ["bind"] },
    ]);
    expect(r.notes).toHaveLength(6);
    expect(r.notes.join("\n")).toContain(
      "dropped bind mount /var/lib/containerd/sandboxes/x/hosts → /etc/hosts",
    );
  });

  it("keeps a cgroupfs path", () => {
    const spec = base();
    spec.linux.cgroupsPath = "/default/c1";
    expect(prepareSpec(JSON.stringify(spec), ctx).cgroupsPath).toBe("default/c1");
  });

  it("refuses what it cannot honour with InvalidArgument", () => {
    expect(code(() => prepareSpec("{", ctx))).toBe(Code.InvalidArgument);
    expect(code(() => prepareSpec("[]", ctx))).toBe(Code.InvalidArgument);
    expect(code(() => prepareSpec(JSON.stringify({ ...base(), process: undefined }), ctx))).toBe(
      Code.InvalidArgument,
    );
    const uts = base();
    uts.linux.namespaces.push({ type: "uts", path: "/proc/77/ns/uts" });
    expect(() => prepareSpec(JSON.stringify(uts), ctx)).toThrow(
      "uts namespace /proc/77/ns/uts does not exist in the VM",
    );
    const hooks = { ...base(), hooks: { prestart: [{ path: "/usr/bin/nvidia-hook" }] } };
    expect(() => prepareSpec(JSON.stringify(hooks), ctx)).toThrow(
      'prestart hook "/usr/bin/nvidia-hook" does not exist in the VM',
    );
    expect(() => prepareSpec(JSON.stringify(base()), { ...ctx, terminal: true })).toThrow(
      "spec.process.terminal is false but the stdio request says true",
    );
  });
});

describe("the pod's resolv.conf", () => {
  const pod = "/run/beetroot/resolv.conf";
  it("replaces CRI's host resolv.conf bind", () => {
    const s = base();
    s.mounts.push({
      destination: "/etc/resolv.conf",
      type: "bind",
      source: "/var/lib/containerd/x/resolv.conf",
      options: ["rbind", "ro"],
    });
    const r = prepareSpec(JSON.stringify(s), { ...ctx, podResolvConf: pod });
    expect(
      (r.spec.mounts as { destination: string }[]).filter((m) => m.destination === "/etc/resolv.conf"),
    ).toEqual([{ destination: "/etc/resolv.conf", type: "bind", source: pod, options: ["rbind", "ro"] }]);
  });
  it("is added for a container on the VM's network, not for one with its own namespace", () => {
    const onVm = prepareSpec(JSON.stringify(base()), { ...ctx, podResolvConf: pod });
    expect((onVm.spec.mounts as { destination: string; source: string }[]).at(-1)).toMatchObject({
      destination: "/etc/resolv.conf",
      source: pod,
    });
    const own = base();
    own.linux.namespaces = [{ type: "pid" }, { type: "network" }];
    const isolated = prepareSpec(JSON.stringify(own), { ...ctx, podResolvConf: pod });
    expect(
      (isolated.spec.mounts as { destination: string }[]).some((m) => m.destination === "/etc/resolv.conf"),
    ).toBe(false);
    const none = prepareSpec(JSON.stringify(base()), ctx);
    expect(
      (none.spec.mounts as { destination: string }[]).some((m) => m.destination === "/etc/resolv.conf"),
    ).toBe(false);
  });
});

describe("prepareProcess", () => {
  it("checks args", () => {
    expect(() => prepareProcess({ args: [] }, false, "process", [])).toThrow(
      "process.args must be a non-empty list of strings",
    );
  });
});

describe("pod-wide network sysctls", () => {
  const withSysctls = (namespaces: { type: string; path?: string }[]) => ({
    ...base(),
    linux: {
      ...base().linux,
      namespaces,
      // As containerd 2.x's CRI writes them for every pod (enable_unprivileged_ports/icmp).
      sysctl: {
        "net.ipv4.ip_unprivileged_port_start": "0",
        "net.ipv4.ping_group_range": "0 2147483647",
        "kernel.shm_rmid_forced": "1",
      },
    },
  });

  it("leave the spec of a container on the VM's network and are set by the guest", () => {
    const r = prepareSpec(JSON.stringify(withSysctls(base().linux.namespaces)), ctx);
    expect(r.vmSysctls).toEqual({
      "net.ipv4.ip_unprivileged_port_start": "0",
      "net.ipv4.ping_group_range": "0 2147483647",
    });
    expect((r.spec.linux as { sysctl: unknown }).sysctl).toEqual({ "kernel.shm_rmid_forced": "1" });
    expect(r.notes.filter((n) => n.startsWith("sysctl net."))).toHaveLength(2);
  });

  it("stay with crun for a container with its own network namespace", () => {
    const r = prepareSpec(JSON.stringify(withSysctls([{ type: "network" }])), ctx);
    expect(r.vmSysctls).toEqual({});
    expect(Object.keys((r.spec.linux as { sysctl: object }).sysctl)).toHaveLength(3);
  });

  it("map to /proc/sys as runc does, refusing keys that could escape it", () => {
    expect(sysctlPath("net.ipv4.ip_unprivileged_port_start")).toBe(
      "/proc/sys/net/ipv4/ip_unprivileged_port_start",
    );
    for (const bad of ["net..x", "net./x", "net.ipv4.conf.all/../../x", "net.", "kernel.x"])
      expect(code(() => sysctlPath(bad))).toBe(Code.InvalidArgument);
    const s = withSysctls(base().linux.namespaces);
    (s.linux.sysctl as Record<string, unknown>)["net.core.somaxconn"] = 4096;
    expect(code(() => prepareSpec(JSON.stringify(s), ctx))).toBe(Code.InvalidArgument);
  });
});
