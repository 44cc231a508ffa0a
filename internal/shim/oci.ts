import { readFileSync } from "node:fs";
import { join } from "node:path";
import { invalidArgument } from "./errors.ts";

/** The parts of an OCI runtime spec (config.json) the host side reads; the guest gets it whole. */
export interface OciSpec {
  ociVersion?: string;
  process?: { terminal?: boolean; args?: string[] } & Record<string, unknown>;
  root?: { path?: string; readonly?: boolean };
  annotations?: Record<string, string>;
  linux?: {
    resources?: {
      cpu?: { quota?: number | string; period?: number | string };
      memory?: { limit?: number | string };
    } & Record<string, unknown>;
    namespaces?: Array<{ type: string; path?: string }>;
  } & Record<string, unknown>;
  [key: string]: unknown;
}

export const SANDBOX_ID_ANNOTATION = "io.kubernetes.cri.sandbox-id";
export const CONTAINER_TYPE_ANNOTATION = "io.kubernetes.cri.container-type";
export const RUNC_GROUP_ANNOTATION = "io.containerd.runc.v2.group";

/** Reads and minimally validates `<bundle>/config.json`; returns the raw bytes too (forwarded as is). */
export function readBundleSpec(bundle: string): { spec: OciSpec; raw: Buffer } {
  const path = join(bundle, "config.json");
  let raw: Buffer;
  try {
    raw = readFileSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "ENOENT") throw invalidArgument(`bundle ${bundle} has no config.json`);
    throw invalidArgument(`cannot read ${path}: ${(err as Error).message}`);
  }
  return { spec: parseSpec(raw, path), raw };
}

export function parseSpec(raw: Buffer | string, where: string): OciSpec {
  let spec: unknown;
  try {
    spec = JSON.parse(raw.toString());
  } catch (err) {
    throw invalidArgument(`${where} is not valid JSON: ${(err as Error).message}`);
  }
  if (spec === null || typeof spec !== "object" || Array.isArray(spec)) {
    throw invalidArgument(`${where} is not a JSON object`);
  }
  const s = spec as OciSpec;
  if (s.annotations !== undefined && (typeof s.annotations !== "object" || s.annotations === null)) {
    throw invalidArgument(`${where}: annotations must be an object`);
  }
  return s;
}

/**
 * The shim group a container belongs to: containers sharing it share one shim (and one VM).
 * Same precedence as containerd's runc shim.
 */
export function groupIdOf(annotations: Record<string, string> | undefined, id: string): string {
  return annotations?.[RUNC_GROUP_ANNOTATION] || annotations?.[SANDBOX_ID_ANNOTATION] || id;
}

export type PodRole = "sandbox" | "container" | "standalone";

/** CRI's pause container creates the pod VM; its app containers join; anything else gets its own VM. */
export function podRoleOf(annotations: Record<string, string> | undefined): PodRole {
  const t = annotations?.[CONTAINER_TYPE_ANNOTATION];
  if (t === "sandbox") return "sandbox";
  if (t === "container") return "container";
  return "standalone";
}
