/**
 * containerd-shim-beetroot-v1: the runtime v2 shim containerd runs for `io.containerd.beetroot.v1`.
 * Modes, as containerd invokes them: `start` (find or spawn the pod's shim, print its address),
 * `delete` (clean up after a dead shim), `-info`, `-v`, and — with no action — the long-lived server.
 * Bundled as CommonJS for a Node single-executable application: no top-level await here.
 *
 * Each mode imports its code when it runs (esbuild turns these `import()`s into lazily initialised
 * modules of the one bundle): `start` sits between containerd and the server answering, and it
 * evaluates only the little it needs (docs/shim.md "Memory and start-up").
 */
import { readFileSync } from "node:fs";
import { setFlagsFromString } from "node:v8";
import { FlagError, parseShimFlags, SHIM_BINARY_NAME } from "../../internal/shim/flags.ts";
import { restoreCallerNodeOptions, serverRuntimeV8Flags } from "../../internal/shim/server-flags.ts";

const STDIN_LIMIT = 10 << 20;

function readStdin(): Uint8Array {
  try {
    const data = readFileSync(0);
    return data.length > STDIN_LIMIT ? data.subarray(0, STDIN_LIMIT) : data;
  } catch {
    // No stdin (closed fd, a TTY in non-blocking mode): nothing was sent.
    return new Uint8Array();
  }
}

function writeOut(bytes: Uint8Array | string): Promise<void> {
  return new Promise((resolve, reject) =>
    process.stdout.write(bytes, (err) => (err ? reject(err) : resolve())),
  );
}

async function main(argv: string[]): Promise<number> {
  let flags: ReturnType<typeof parseShimFlags>;
  try {
    flags = parseShimFlags(argv);
  } catch (err) {
    if (err instanceof FlagError) {
      process.stderr.write(`${SHIM_BINARY_NAME}: ${err.message}\n`);
      return 2;
    }
    throw err;
  }

  if (flags.version) {
    const { versionText } = await import("../../internal/shim/runtime-info.ts");
    await writeOut(versionText(process.argv[1] ?? SHIM_BINARY_NAME));
    return 0;
  }
  if (flags.info) {
    readStdin(); // runtime options, if any: nothing in them changes what we report
    const { runtimeInfoBytes } = await import("../../internal/shim/runtime-info.ts");
    await writeOut(runtimeInfoBytes());
    return 0;
  }

  switch (flags.action) {
    case "start": {
      const { runStart } = await import("../../internal/shim/start.ts");
      const result = await runStart({ flags, stdin: readStdin(), cwd: process.cwd(), env: process.env });
      await writeOut(result.output);
      return 0;
    }
    case "delete": {
      const [{ beetrootPaths }, { createLogger }, { runDelete }] = await Promise.all([
        import("../../internal/config/paths.ts"),
        import("../../internal/log/logger.ts"),
        import("../../internal/shim/delete.ts"),
      ]);
      // containerd logs what reaches stderr here as warnings of the dead shim's cleanup.
      const log = createLogger({ fd: 2, level: "warn", fields: { id: flags.id } });
      const outcome = await runDelete({
        flags,
        cwd: process.cwd(),
        paths: beetrootPaths(),
        releasers: async () => (await import("../../internal/shim/host-runtime.ts")).deleteReleasers(),
        log,
      });
      await writeOut(outcome.output);
      return 0;
    }
    case "serve": {
      // V8 flags NODE_OPTIONS may not carry (start passed the others there). Set before any of the
      // server's code runs; what each one saves is in docs/shim.md.
      for (const f of serverRuntimeV8Flags(process.env.NODE_OPTIONS)) setFlagsFromString(f);
      // start's NODE_OPTIONS were for this process only: QEMU, CNI plugins and the rest inherit env.
      restoreCallerNodeOptions(process.env);
      const [{ runServer }, { createHostRuntime }] = await Promise.all([
        import("../../internal/shim/serve.ts"),
        import("../../internal/shim/host-runtime.ts"),
      ]);
      await runServer({ flags, env: process.env, cwd: process.cwd(), host: createHostRuntime });
      // The server keeps the event loop alive; it exits through its own shutdown path.
      return process.exitCode === undefined ? 0 : Number(process.exitCode);
    }
  }
}

main(process.argv.slice(2)).then(
  (code) => {
    if (code !== 0) process.exitCode = code;
  },
  (err: unknown) => {
    process.stderr.write(`${SHIM_BINARY_NAME}: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exitCode = 1;
  },
);
