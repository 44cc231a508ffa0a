import { builders } from "./builders.ts";

function usage(): string {
  const width = Math.max(...Object.keys(builders).map((n) => n.length), 3);
  const lines = Object.entries(builders).map(([name, b]) => `  ${name.padEnd(width)}  ${b.summary}`);
  return `usage: beetroot build <asset>|all [args]\n\nassets:\n${lines.join("\n")}\n  ${"all".padEnd(width)}  every asset above, in order\n`;
}

/** `beetroot build kernel|guest|all`: dispatches to the builders registered in builders.ts. */
export async function main(args: string[]): Promise<number> {
  const [name, ...rest] = args;
  if (name === undefined || name === "-h" || name === "--help") {
    process.stdout.write(usage());
    return name === undefined ? 2 : 0;
  }
  if (name === "all") {
    for (const [asset, b] of Object.entries(builders)) {
      const code = await (await b.load()).build(rest);
      if (code !== 0) {
        process.stderr.write(`beetroot build all: ${asset} failed (exit ${code})\n`);
        return code;
      }
    }
    return 0;
  }
  const builder = builders[name];
  if (!builder) {
    process.stderr.write(`beetroot build: unknown asset "${name}"\n\n${usage()}`);
    return 2;
  }
  return (await builder.load()).build(rest);
}
