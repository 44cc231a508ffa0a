/**
 * `beetroot`: the operator CLI. Each subcommand lives with the concern it drives and is loaded
 * lazily, so `beetroot gc` does not pay for the kernel builder and vice versa.
 */
type Main = (args: string[]) => Promise<number>;

interface Command {
  readonly summary: string;
  readonly load: () => Promise<{ main: Main }>;
}

const commands: Record<string, Command> = {
  setup: {
    summary: "install host dependencies (apt + trixie/sid prefixes)",
    load: () => import("../../internal/hostdeps/setup-command.ts"),
  },
  build: {
    summary: "build guest assets: build kernel|guest|all",
    load: () => import("../../internal/assets/build-command.ts"),
  },
  bench: {
    summary: "measure: bench ttrpc|… [--json]",
    load: () => import("../../internal/bench/command.ts"),
  },
  gc: {
    summary: "release what crashed VMs/shims left behind (from the resource ledger)",
    load: () => import("../../internal/cleanup/gc-command.ts"),
  },
  demo: {
    summary: "run a container through a private containerd in a beetroot micro-VM",
    load: () => import("../../internal/demo/command.ts"),
  },
  doctor: {
    summary: "check this host: deps, assets, TSC, KVM probe (real boot) and the accelerator in use",
    load: () => import("../../internal/vm/doctor-command.ts"),
  },
};

function usage(): string {
  const width = Math.max(...Object.keys(commands).map((n) => n.length), 4);
  const lines = Object.entries(commands).map(([name, c]) => `  ${name.padEnd(width)}  ${c.summary}`);
  return `usage: beetroot <command> [args]\n\ncommands:\n${lines.join("\n")}\n`;
}

export async function run(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === "help" || name === "-h" || name === "--help") {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  const command = commands[name];
  if (!command) {
    process.stderr.write(`beetroot: unknown command "${name}"\n\n${usage()}`);
    return 2;
  }
  const { main } = await command.load();
  return main(rest);
}

run(process.argv.slice(2)).then(
  (code) => {
    process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`beetroot: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
