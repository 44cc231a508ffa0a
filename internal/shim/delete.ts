import { existsSync, readFileSync, unlinkSync } from "node:fs";
import { join } from "node:path";
import { create, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { DeleteResponseSchema } from "../../api/gen/containerd/task/v2/shim_pb.ts";
import type { BeetrootPaths } from "../config/paths.ts";
import type { Logger } from "../log/logger.ts";
import { type OwnerSweep, sweepOwner } from "../state/gc.ts";
import { ledgerLocation } from "../state/ledger.ts";
import type { Releasers } from "../state/releasers.ts";
import { errorMessage } from "./errors.ts";
import type { ShimFlags } from "./flags.ts";
import { groupIdOf, type OciSpec, parseSpec, podRoleOf } from "./oci.ts";
import { podVmId, vmLedgerOwner } from "./pod.ts";
import { canConnect } from "./start.ts";

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
 * `delete`: containerd runs it (cwd = bundle) when a shim died or never started. Whatever the shim
 * left is released from the VM's resource ledger — QEMU, vhost-device-vsock, sockets, disks, TAP and
 * CNI — unless a live shim still holds that ledger. An app container of a pod leaves the pod's VM
 * to its sandbox's delete. Prints a protobuf DeleteResponse.
 */
export async function runDelete(opts: {
  flags: ShimFlags;
  cwd: string;
  paths: BeetrootPaths;
  releasers: Releasers;
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
    try {
      sweep = await sweepOwner(owner, { paths: opts.paths, releasers: opts.releasers, log });
      log.info("delete: swept VM ledger", { owner, status: sweep.status, released: sweep.released.length });
    } catch (err) {
      log.warn("delete: sweeping the VM ledger failed", { owner, error: errorMessage(err) });
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

  const output = toBinary(
    DeleteResponseSchema,
    create(DeleteResponseSchema, {
      pid: 0,
      exitStatus: DEAD_SHIM_EXIT_STATUS,
      exitedAt: timestampFromDate(new Date()),
    }),
  );
  return { output, ...(sweep ? { sweep } : {}), removedSocket };
}
