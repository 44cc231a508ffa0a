import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfList } from "./config.ts";
import { type CniPluginError, CniRuntime } from "./invoke.ts";

/**
 * The CNI runtime against recording fake plugins (node scripts on a private CNI_PATH): what each
 * plugin is told (environment, stdin, prevResult chaining, capability args), in which order, and
 * how failures come back.
 */
let dir: string;
let logFile: string;

const recorder = (behaviour: string) => `#!${process.execPath}
const fs = require("fs");
const stdin = JSON.parse(fs.readFileSync(0, "utf8"));
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => k.startsWith("CNI_")));
fs.appendFileSync(${JSON.stringify("LOG")}, JSON.stringify({ plugin: require("path").basename(process.argv[1]), env, stdin }) + "\\n");
${behaviour}
`;

function plugin(name: string, behaviour: string): void {
  const f = join(dir, name);
  writeFileSync(f, recorder(behaviour).replace('"LOG"', JSON.stringify(logFile)));
  chmodSync(f, 0o755);
}

const calls = () =>
  readFileSync(logFile, "utf8")
    .trim()
    .split("\n")
    .filter((l) => l !== "")
    .map(
      (l) => JSON.parse(l) as { plugin: string; env: Record<string, string>; stdin: Record<string, unknown> },
    );

const rt = { containerId: "ctr-1", netns: "/run/netns/test", ifname: "eth0", args: { K8S_POD_NAME: "p" } };

beforeAll(() => {
  dir = mkdtempSync(join(tmpdir(), "beetroot-cni-fake-"));
  logFile = join(dir, "calls.log");
  plugin(
    "fake-ipam-bridge",
    `if (process.env.CNI_COMMAND === "ADD") process.stdout.write(JSON.stringify({ cniVersion: stdin.cniVersion, interfaces: [{ name: "eth0", mac: "02:00:00:00:00:01", sandbox: process.env.CNI_NETNS }], ips: [{ address: "10.9.0.2/24", gateway: "10.9.0.1", interface: 0 }], routes: [{ dst: "0.0.0.0/0" }], dns: { nameservers: ["10.9.0.53"], search: ["x.test"] } }));`,
  );
  plugin(
    "fake-passthrough",
    `if (process.env.CNI_COMMAND !== "DEL") process.stdout.write(JSON.stringify(stdin.prevResult));`,
  );
  plugin(
    "fake-bad-config",
    `process.stdout.write(JSON.stringify({ cniVersion: "1.0.0", code: 7, msg: "invalid network config", details: "bad field" })); process.exit(1);`,
  );
  plugin(
    "fake-full",
    `process.stdout.write(JSON.stringify({ cniVersion: "1.0.0", code: 999, msg: "failed to allocate for range 0: no IP addresses available in range set: 10.9.0.1-10.9.0.2" })); process.exit(1);`,
  );
  plugin("fake-crash", `process.stderr.write("panic: boom"); process.exit(2);`);
  plugin(
    "fake-garbage",
    `process.stdout.write(JSON.stringify({ cniVersion: "1.0.0", ips: [{ address: "300.1.1.1/24" }] }));`,
  );
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const list = (...types: string[]) =>
  parseConfList(
    {
      cniVersion: "1.0.0",
      name: "fake-net",
      plugins: types.map((type) => ({
        type,
        ...(type === "fake-passthrough" && { capabilities: { portMappings: true } }),
      })),
    },
    "test",
  );

describe("CNI runtime", () => {
  it("chains ADD with prevResult and the CNI environment, DEL in reverse", async () => {
    writeFileSync(logFile, "");
    const cni = new CniRuntime([dir]);
    const l = list("fake-ipam-bridge", "fake-passthrough");
    const r = await cni.add(l, {
      ...rt,
      capabilityArgs: {
        portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }],
        bandwidth: { x: 1 },
      },
    });
    expect(r.ips).toEqual([{ address: "10.9.0.2/24", gateway: "10.9.0.1", interface: 0 }]);
    expect(r.dns).toEqual({ nameservers: ["10.9.0.53"], search: ["x.test"] });
    await cni.del(l, rt, r);
    const c = calls();
    expect(c.map((x) => `${x.env.CNI_COMMAND} ${x.plugin}`)).toEqual([
      "ADD fake-ipam-bridge",
      "ADD fake-passthrough",
      "DEL fake-passthrough",
      "DEL fake-ipam-bridge",
    ]);
    expect(c[0]?.env).toEqual({
      CNI_COMMAND: "ADD",
      CNI_CONTAINERID: "ctr-1",
      CNI_NETNS: "/run/netns/test",
      CNI_IFNAME: "eth0",
      CNI_ARGS: "IgnoreUnknown=1;K8S_POD_NAME=p",
      CNI_PATH: dir,
    });
    expect(c[0]?.stdin).toEqual({ type: "fake-ipam-bridge", name: "fake-net", cniVersion: "1.0.0" });
    expect(c[1]?.stdin.prevResult).toEqual(r.raw);
    // Only the capabilities a plugin declares reach it, as runtimeConfig.
    expect(c[1]?.stdin.runtimeConfig).toEqual({
      portMappings: [{ hostPort: 8080, containerPort: 80, protocol: "tcp" }],
    });
    expect(c[0]?.stdin.runtimeConfig).toBeUndefined();
    expect(c[2]?.stdin.prevResult).toEqual(r.raw);
  });

  it("reports plugin errors with the CNI code mapped to a gRPC code", async () => {
    const cni = new CniRuntime([dir]);
    const fail = async (type: string) => {
      try {
        await cni.add(list(type), rt);
      } catch (err) {
        return err as CniPluginError;
      }
      throw new Error("expected failure");
    };
    const bad = await fail("fake-bad-config");
    expect(bad.code).toBe("InvalidArgument");
    expect(bad.message).toBe(
      'CNI ADD of network "fake-net" failed in plugin fake-bad-config: invalid network config: bad field (CNI error code 7)',
    );
    expect((await fail("fake-full")).code).toBe("ResourceExhausted");
    const crash = await fail("fake-crash");
    expect(crash.code).toBe("Internal");
    expect(crash.message).toMatch(/exit 2: panic: boom/);
    expect((await fail("fake-garbage")).message).toMatch(
      /malformed result: ips\[0\]\.address.*not an IPv4 or IPv6 address/,
    );
    expect((await fail("no-such")).message).toMatch(/CNI plugin "no-such" not found in CNI_PATH/);
  });

  it("validates the runtime configuration before running anything", async () => {
    const cni = new CniRuntime([dir]);
    await expect(cni.add(list("fake-ipam-bridge"), { ...rt, containerId: "../x" })).rejects.toThrow(
      /CNI container id/,
    );
    await expect(cni.add(list("fake-ipam-bridge"), { ...rt, ifname: "a/b" })).rejects.toThrow(
      /interface name/,
    );
    await expect(cni.add(list("fake-ipam-bridge"), { ...rt, netns: "rel" })).rejects.toThrow(/not absolute/);
  });

  // A shim's working directory is its bundle, which containerd removes once it takes the shim for
  // dead (SIGTERM: the shim closes its socket, then stops its VM and tears the network down).
  it("runs DEL (and ADD) from / when the caller's working directory was deleted", async () => {
    plugin("fake-cwd", `fs.appendFileSync(${JSON.stringify(join(dir, "cwd.log"))}, process.cwd() + "\\n");`);
    const cni = new CniRuntime([dir]);
    const home = process.cwd();
    const gone = mkdtempSync(join(tmpdir(), "beetroot-cni-cwd-"));
    process.chdir(gone);
    try {
      rmSync(gone, { recursive: true });
      await cni.del(list("fake-cwd", "fake-passthrough"), rt);
      await cni.add(list("fake-ipam-bridge"), rt);
    } finally {
      process.chdir(home);
    }
    expect(readFileSync(join(dir, "cwd.log"), "utf8")).toBe("/\n");
  });

  it("a plugin that cannot be started is reported with the reason, not as an exit status", async () => {
    const f = join(dir, "fake-no-interpreter");
    writeFileSync(f, "#!/nonexistent/interpreter\n");
    chmodSync(f, 0o755);
    const err = await new CniRuntime([dir]).del(list("fake-no-interpreter"), rt).then(
      () => undefined,
      (e: unknown) => e as CniPluginError,
    );
    expect(err?.message).toMatch(
      /failed in plugin fake-no-interpreter: cannot run .*fake-no-interpreter: .*ENOENT/,
    );
    expect(err?.code).toBe("Internal");
  });
});
