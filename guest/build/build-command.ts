/** Entry for `beetroot build guest` (registered in internal/assets/builders.ts). */
import { beetrootPaths } from "../../internal/config/paths.ts";
import { HostDepsMissingError, loadHostDeps } from "../../internal/hostdeps/index.ts";
import { buildGuestImage } from "./build.ts";
import { GuestBuildError, gatherInputs, projectRoot } from "./inputs.ts";

const usage = `usage: beetroot build guest [--force]

Builds the guest root filesystem (vminitd on Bun, crun + glibc from \`beetroot setup\`, the binder
self-test) into <assetsDir>/guest/<fingerprint>/guest.erofs. Unchanged inputs reuse the cached image.
`;

export async function build(args: string[]): Promise<number> {
  let force = false;
  for (const a of args) {
    if (a === "--force") force = true;
    else if (a === "-h" || a === "--help") {
      process.stdout.write(usage);
      return 0;
    } else {
      process.stderr.write(`beetroot build guest: unknown argument "${a}"\n\n${usage}`);
      return 2;
    }
  }
  const log = (line: string) => process.stderr.write(`beetroot build guest: ${line}\n`);
  try {
    const paths = beetrootPaths();
    const deps = loadHostDeps(paths);
    const inputs = await gatherInputs(projectRoot(), {
      root: deps.guestUserspaceRoot,
      crunVersion: deps.guestUserspace.crunVersion,
      libcVersion: deps.guestUserspace.libcVersion,
      mkfsErofs: deps.mkfsErofs,
    });
    const { artifact, cached } = await buildGuestImage({ paths, inputs, force, log });
    const m = artifact.meta;
    process.stdout.write(
      `guest image ${artifact.image}\n` +
        `  fingerprint ${artifact.fingerprint}\n` +
        `  size ${(m.imageBytes / 1e6).toFixed(1)} MB (staged ${(m.stagedBytes / 1e6).toFixed(1)} MB), ` +
        `bun ${m.bunVersion}, crun ${m.crunVersion}, glibc ${m.libcVersion}\n` +
        `  ${cached ? "cached (inputs unchanged)" : `built in ${m.buildSeconds} s`}\n`,
    );
    return 0;
  } catch (err) {
    if (err instanceof GuestBuildError || err instanceof HostDepsMissingError) {
      process.stderr.write(`beetroot build guest: ${err.message}\n`);
      return 1;
    }
    throw err;
  }
}
