import { existsSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import type { BeetrootPaths } from "../config/paths.ts";
import type { Logger } from "../log/logger.ts";
import type { OwnerSweep } from "../state/gc.ts";
import { ledgerLocation } from "../state/ledger-location.ts";
import type { Releasers } from "../state/releasers.ts";
import { encodeDeleteResponse } from "./delete-response.ts";
import { errorMessage } from "./errors.ts";
import { SHIM_BINARY_NAME, type ShimFlags } from "./flags.ts";
import { groupIdOf, type OciSpec, parseSpec, podRoleOf } from "./oci.ts";
import { podVmId, vmLedgerOwner } from "./pod-id.ts";
import { canConnect } from "./socket-address.ts";

/** What `delete` reports for a task whose shim died: killed, now (as containerd's own shims do). */
export const DEAD_SHIM_EXIT_STATUS = 137;

export interface DeleteOutcome {
  readonly output: Uint8Array;
  readonly sweep?: OwnerSweep;
  readonly removedSocket: boolean;
}

function readSpecIfAny(bundle: string): OciSpec | undefined {
  const path = join(bundle, "config.json");
  try {
    return parseSpec(readFileSync(path), path);
  } catch {
    return undefined;
  }
}

/**
 * The pid of the shim server `start` spawned for this bundle, while it still runs. containerd runs
 * `delete` every time a shim's connection closes, also after a clean Shutdown, when the server may
 * still be powering its last VM off (Delete does not wait for that): the ledger is then its own.
 */
function liveServerPid(bundle: string, id: string): number | undefined {
  try {
    const pid = Number.parseInt(readFileSync(join(bundle, "shim.pid"), "utf8"), 10);
    const argv = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    const idAt = argv.indexOf("-id");
    const isOurs = argv.some((a) => a.includes(SHIM_BINARY_NAME)) && argv.includes("-socket");
    return isOurs && idAt > 0 && argv[idAt + 1] === id ? pid : undefined;
  } catch {
    return undefined;
  }
}

/**
 * `delete`: containerd runs it (cwd = bundle) when a shim died or never started. Whatever the shim
 * left is released from the VM's resource ledger — QEMU, vhost-device-vsock, sockets, disks, TAP and
 * CNI — unless a live shim still holds that ledger. An app container of a pod leaves the pod's VM
 * to its sandbox's delete. Prints a protobuf DeleteResponse.
 */
export async function runDelete(opts: {
  flags: ShimFlags;
  cwd: string;
  paths: BeetrootPaths;
  /** Loaded only for a sweep: they pull in the whole host stack. */
  releasers: () => Promise<Releasers>;
  log: Logger;
}): Promise<DeleteOutcome> {
  const { flags, log } = opts;
  if (flags.namespace === "") throw new Error("shim namespace cannot be empty");
  if (flags.id === "") throw new Error("shim id cannot be empty");
  const bundle = flags.bundle || opts.cwd;
  const spec = readSpecIfAny(bundle);
  const role = podRoleOf(spec?.annotations);
  const podId = role === "standalone" ? flags.id : groupIdOf(spec?.annotations, flags.id);

  let sweep: OwnerSweep | undefined;
  const owner = vmLedgerOwner(podVmId(flags.address, flags.namespace, podId));
  if (role !== "container" && existsSync(ledgerLocation(owner, opts.paths))) {
    const serverPid = liveServerPid(bundle, flags.id);
    if (serverPid !== undefined) {
      log.info("delete: the shim still powers its VM off and releases the ledger itself", {
        owner,
        pid: serverPid,
      });
    } else {
      try {
        const { sweepOwner } = await import("../state/gc.ts");
        sweep = await sweepOwner(owner, { paths: opts.paths, releasers: await opts.releasers(), log });
        log.info("delete: swept VM ledger", { owner, status: sweep.status, released: sweep.released.length });
      } catch (err) {
        log.warn("delete: sweeping the VM ledger failed", { owner, error: errorMessage(err) });
      }
    }
  }

  // The socket of a dead shim; never one that still answers (another container of the group may use it).
  let removedSocket = false;
  const addressFile = join(bundle, "address");
  if (existsSync(addressFile)) {
    const address = readFileSync(addressFile, "utf8").trim();
    const path = address.startsWith("unix://") ? address.slice("unix://".length) : address;
    if (path !== "" && existsSync(path) && !(await canConnect(path))) {
      try {
        unlinkSync(path);
        removedSocket = true;
      } catch (err) {
        log.warn("delete: cannot remove the shim socket", { path, error: errorMessage(err) });
      }
    }
  }

  const output = encodeDeleteResponse({ pid: 0, exitStatus: DEAD_SHIM_EXIT_STATUS, exitedAt: new Date() });
  return { output, ...(sweep ? { sweep } : {}), removedSocket };
}
