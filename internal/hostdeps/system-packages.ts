import { SetupError } from "./errors.ts";
import { run } from "./exec.ts";

export interface InstalledPackage {
  readonly name: string;
  readonly version: string;
}

/** Parses `dpkg-query -W -f '${Package}\t${db:Status-Status}\t${Version}\n'` output. */
export function parseDpkgQuery(stdout: string): Map<string, InstalledPackage> {
  const installed = new Map<string, InstalledPackage>();
  for (const line of stdout.split("\n")) {
    const [name, status, version] = line.split("\t");
    if (!name || status !== "installed" || !version) continue;
    installed.set(name.replace(/:[a-z0-9-]+$/, ""), { name: name.replace(/:[a-z0-9-]+$/, ""), version });
  }
  return installed;
}

export async function queryInstalled(names: readonly string[]): Promise<Map<string, InstalledPackage>> {
  // Exit status 1 just means some names are unknown to dpkg: that is the answer we are after.
  const r = await run("dpkg-query", [
    "-W",
    "-f",
    // biome-ignore lint/suspicious/noTemplateCurlyInString: dpkg-query's own ${field} syntax
    "${Package}\\t${db:Status-Status}\\t${Version}\\n",
    ...names,
  ]);
  return parseDpkgQuery(r.stdout);
}

/** Names apt could not find, from its "Unable to locate package X" / "has no installation candidate" errors. */
export function unavailablePackages(aptOutput: string): string[] {
  const names = new Set<string>();
  for (const m of aptOutput.matchAll(/Unable to locate package (\S+)/g)) names.add(m[1]!);
  for (const m of aptOutput.matchAll(/Package '?([^'\s]+)'? has no installation candidate/g))
    names.add(m[1]!);
  return [...names];
}

/** Installs the missing system packages from the machine's own suite; apt is not touched when none are missing. */
export async function installSystemPackages(
  names: readonly string[],
  codename: string,
  log: (line: string) => void,
): Promise<Map<string, InstalledPackage>> {
  let installed = await queryInstalled(names);
  const missing = names.filter((n) => !installed.has(n));
  if (missing.length === 0) return installed;
  log(`installing ${missing.length} system package(s) from ${codename}: ${missing.join(" ")}`);
  const env = { DEBIAN_FRONTEND: "noninteractive" };
  const progress = (l: string) => {
    if (/^(Get:|Hit:|Err:|Setting up|Unpacking|E:|W:)/.test(l)) log(`  ${l}`);
  };
  const update = await run("apt-get", ["-q", "update"], { env, onLine: progress });
  if (update.exitCode !== 0) {
    throw new SetupError(
      `apt-get update failed (exit ${update.exitCode}): ${update.stderr.trim().split("\n").slice(-3).join(" | ")}`,
      "check the mirror in /etc/apt/sources.list(.d) is reachable, then re-run `npx beetroot setup`",
    );
  }
  const install = await run("apt-get", ["-q", "-y", "--no-install-recommends", "install", ...missing], {
    env,
    onLine: progress,
  });
  if (install.exitCode !== 0) {
    const unknown = unavailablePackages(`${install.stdout}\n${install.stderr}`);
    if (unknown.length > 0) {
      throw new SetupError(
        `package(s) ${unknown.join(", ")} do not exist in ${codename} as configured in this machine's apt sources`,
        "enable the suite's main component (and -updates) in /etc/apt/sources.list(.d), or install an equivalent by hand (docs/host-dependencies.md)",
      );
    }
    throw new SetupError(
      `apt-get install ${missing.join(" ")} failed (exit ${install.exitCode}): ${install.stderr.trim().split("\n").slice(-3).join(" | ")}`,
      "run the same apt-get install by hand to see the conflict, fix it, then re-run `npx beetroot setup`",
    );
  }
  installed = await queryInstalled(names);
  const still = names.filter((n) => !installed.has(n));
  if (still.length > 0) {
    throw new SetupError(
      `apt-get reported success but ${still.join(", ")} is still not installed`,
      "inspect `dpkg -l " + still.join(" ") + "`",
    );
  }
  return installed;
}
