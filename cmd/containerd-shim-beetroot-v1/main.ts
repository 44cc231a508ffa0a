/**
 * containerd-shim-beetroot-v1: the runtime v2 shim containerd runs for `io.containerd.beetroot.v1`.
 * Modes, as containerd invokes them: `start` (find or spawn the pod's shim, print its address),
 * `delete` (clean up after a dead shim), `-info`, `-v`, and — with no action — the long-lived server.
 * Bundled as CommonJS for a Node single-executable application: no top-level await here.
 */
import { readFileSync } from "node:fs";
import { beetrootPaths } from "../../internal/config/paths.ts";
import { createLogger } from "../../internal/log/logger.ts";
import { runDelete } from "../../internal/shim/delete.ts";
import { FlagError, parseShimFlags } from "../../internal/shim/flags.ts";
import { createHostRuntime, deleteReleasers } from "../../internal/shim/host-runtime.ts";
import { runtimeInfoBytes, SHIM_BINARY_NAME, versionText } from "../../internal/shim/runtime-info.ts";
import { runServer } from "../../internal/shim/serve.ts";
import { runStart } from "../../internal/shim/start.ts";

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
    await writeOut(versionText(process.argv[1] ?? SHIM_BINARY_NAME));
    return 0;
  }
  if (flags.info) {
    readStdin(); // runtime options, if any: nothing in them changes what we report
    await writeOut(runtimeInfoBytes());
    return 0;
  }

  switch (flags.action) {
    case "start": {
      const result = await runStart({ flags, stdin: readStdin(), cwd: process.cwd(), env: process.env });
      await writeOut(result.output);
      return 0;
    }
    case "delete": {
      // containerd logs what reaches stderr here as warnings of the dead shim's cleanup.
      const log = createLogger({ fd: 2, level: "warn", fields: { id: flags.id } });
      const outcome = await runDelete({
        flags,
        cwd: process.cwd(),
        paths: beetrootPaths(),
        releasers: deleteReleasers(),
        log,
      });
      await writeOut(outcome.output);
      return 0;
    }
    case "serve":
      await runServer({ flags, env: process.env, cwd: process.cwd(), host: createHostRuntime });
      // The server keeps the event loop alive; it exits through its own shutdown path.
      return process.exitCode === undefined ? 0 : Number(process.exitCode);
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
