import { execa } from "execa";
import { errorText, NetworkError } from "../rtnetlink/errors.ts";
import type { NetConfList } from "./cni/config.ts";

/**
 * Outbound NAT for beetroot's embedded default network: one MASQUERADE rule for its whole subnet,
 * the way Docker has one per bridge, instead of the bridge plugin's `ipMasq`. That option makes a
 * chain and rules per container (eight iptables runs, ~12 ms of every CNI ADD on the test host)
 * and cannot delete them once the namespace is gone (docs/network.md). The rule is checked on every
 * setup (a flushed table gets it back) and, like the bridge itself, stays when the pods are gone.
 */
export interface Masquerade {
  readonly subnet: string;
  readonly bridge: string;
}

/** The subnet and bridge of the embedded conflist's bridge plugin (its first plugin). */
export function embeddedMasquerade(list: NetConfList): Masquerade {
  const bridge = list.plugins[0];
  const ipam = bridge?.ipam as { ranges?: { subnet?: unknown }[][] } | undefined;
  const subnet = ipam?.ranges?.[0]?.[0]?.subnet;
  if (bridge?.type !== "bridge" || typeof bridge.bridge !== "string" || typeof subnet !== "string")
    throw new NetworkError(
      "Internal",
      "the embedded CNI configuration has no bridge plugin with a bridge name and an ipam range first",
    );
  return { subnet, bridge: bridge.bridge };
}

/** The POSTROUTING rule: from the subnet, leaving by any interface but the bridge. */
export function masqueradeRule(m: Masquerade): string[] {
  return [
    "POSTROUTING",
    "-s",
    m.subnet,
    "!",
    "-o",
    m.bridge,
    "-m",
    "comment",
    "--comment",
    `beetroot: outbound NAT for ${m.subnet}`,
    "-j",
    "MASQUERADE",
  ];
}

export type CommandRunner = (
  file: string,
  args: readonly string[],
) => Promise<{ exitCode?: number | undefined; stderr: string }>;

const runIptables: CommandRunner = (file, args) => execa(file, args, { reject: false, stdin: "ignore" });

/**
 * Adds the rule unless it is there. Two setups racing may both add it; a duplicate rule changes
 * nothing, and the next check finds the first one.
 */
export async function ensureMasquerade(m: Masquerade, run: CommandRunner = runIptables): Promise<void> {
  const rule = masqueradeRule(m);
  const attempt = async (op: "-C" | "-A") => {
    try {
      const r = await run("iptables", ["-w", "-t", "nat", op, ...rule]);
      return r.exitCode === 0 ? undefined : r.stderr.trim() || `exit status ${r.exitCode}`;
    } catch (err) {
      return errorText(err);
    }
  };
  if ((await attempt("-C")) === undefined) return;
  const failure = await attempt("-A");
  if (failure !== undefined)
    throw new NetworkError(
      "FailedPrecondition",
      `adding the outbound NAT rule for ${m.subnet} failed: ${failure}`,
    );
}
