/**
 * `beetroot bench <suite>`: one dispatcher for every benchmark. Each suite lives with the code it
 * measures and is loaded lazily; add a suite with one line in `suites`.
 */
type Main = (args: string[]) => Promise<number>;

export const suites: Record<
  string,
  { readonly summary: string; readonly load: () => Promise<{ main: Main }> }
> = {
  ttrpc: {
    summary: "TTRPC unary latency and streaming throughput: TS<->TS, TS<->Go, Go<->Go",
    load: () => import("../ttrpc/bench/command.ts"),
  },
  net: {
    summary: "pod network: setup/teardown, host<->container TCP throughput and RTT (veth, TAP+QEMU, TCG VM)",
    load: () => import("../vm/bench-net.ts"),
  },
  run: {
    summary:
      "ctr run --rm true (beetroot vs runc), shim RSS, exec stdout throughput, on a private containerd",
    load: () => import("../shim/bench/command.ts"),
  },
  volumes: {
    summary:
      "a host dir bind-mounted in a container: sequential write/read MiB/s, small files/s (beetroot vs runc)",
    load: () => import("../volumes/bench.ts"),
  },
  boot: {
    summary: "VM boot: QEMU spawn → first TTRPC answer from vminitd (median/p90, phases), idle RSS",
    load: () => import("../vm/bench-boot.ts"),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(suites).map((n) => n.length));
  const lines = Object.entries(suites).map(([name, s]) => `  ${name.padEnd(width)}  ${s.summary}`);
  return `usage: beetroot bench <suite> [--json] [suite options]\n\nsuites:\n${lines.join("\n")}\n`;
}

export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "-h" || name === "--help" || name === "help") {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const suite = suites[name];
  if (suite === undefined) {
    process.stderr.write(`beetroot bench: unknown suite "${name}"\n\n${usage()}`);
    return 2;
  }
  const { main: run } = await suite.load();
  return run(rest);
}
