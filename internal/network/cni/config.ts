import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { NetworkError } from "../../rtnetlink/errors.ts";
import { defaultConflistText } from "./default-conflist.generated.ts";

/**
 * CNI network configuration: found the way containerd's CRI plugin finds it (the lexically first
 * `*.conflist`, `*.conf` or `*.json` in the conf dir; a single-plugin `.conf` is wrapped into a
 * list), else beetroot's embedded default (assets/cni/10-beetroot.conflist: bridge + host-local on
 * a private range + portmap). A broken first file is an error, not a reason to try the next:
 * silently using another network would be worse.
 */
export interface PluginConf {
  readonly type: string;
  readonly capabilities?: Readonly<Record<string, boolean>>;
  readonly [key: string]: unknown;
}

export interface NetConfList {
  readonly cniVersion: string;
  readonly name: string;
  readonly disableCheck?: boolean;
  readonly plugins: readonly PluginConf[];
}

export interface LoadedConfList {
  readonly list: NetConfList;
  /** The file it came from, or "embedded default". */
  readonly source: string;
}

/** Result formats we can read (0.3.0 introduced the interfaces/ips/routes layout). */
export const SUPPORTED_CNI_VERSIONS = ["0.3.0", "0.3.1", "0.4.0", "1.0.0", "1.1.0"] as const;
const NAME_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
// A plugin type becomes a file name inside CNI_PATH: no slashes, no dot-dot.
const TYPE_RE = /^[A-Za-z0-9][A-Za-z0-9_.-]*$/;

export const DEFAULT_CONF_DIR = "/etc/cni/net.d";
export const EMBEDDED_SOURCE = "embedded default (assets/cni/10-beetroot.conflist)";

function invalid(source: string, why: string): NetworkError {
  return new NetworkError("InvalidArgument", `CNI configuration ${source}: ${why}`);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function checkVersion(v: unknown, source: string, where: string): string {
  if (typeof v !== "string" || v === "") throw invalid(source, `${where} has no cniVersion`);
  if (!(SUPPORTED_CNI_VERSIONS as readonly string[]).includes(v))
    throw invalid(
      source,
      `${where} has cniVersion ${JSON.stringify(v)}; supported: ${SUPPORTED_CNI_VERSIONS.join(", ")}`,
    );
  return v;
}

function checkPlugin(p: unknown, source: string, i: number): PluginConf {
  if (!isObject(p)) throw invalid(source, `plugins[${i}] is not an object`);
  if (typeof p.type !== "string" || !TYPE_RE.test(p.type))
    throw invalid(source, `plugins[${i}].type ${JSON.stringify(p.type)} is not a plugin name`);
  if (p.capabilities !== undefined && !isObject(p.capabilities))
    throw invalid(source, `plugins[${i}].capabilities is not an object`);
  return p as PluginConf;
}

/** Validates parsed JSON as a conflist (or a single-plugin conf, which is wrapped). */
export function parseConfList(value: unknown, source: string, single = false): NetConfList {
  if (!isObject(value)) throw invalid(source, "the top level is not a JSON object");
  if (typeof value.name !== "string" || !NAME_RE.test(value.name))
    throw invalid(source, `network name ${JSON.stringify(value.name)} must match ${NAME_RE}`);
  const cniVersion = checkVersion(value.cniVersion, source, "the network");
  if (single && Array.isArray(value.plugins))
    throw invalid(
      source,
      'holds a "plugins" list but is not named *.conflist (containerd reads it as a single plugin)',
    );
  if (single || value.plugins === undefined) {
    if (!single) throw invalid(source, 'a .conflist needs a "plugins" array');
    const { name, cniVersion: _v, ...plugin } = value;
    return { cniVersion, name, plugins: [checkPlugin(plugin, source, 0)] };
  }
  if (!Array.isArray(value.plugins) || value.plugins.length === 0)
    throw invalid(source, '"plugins" must be a non-empty array');
  const plugins = value.plugins.map((p, i) => checkPlugin(p, source, i));
  if (value.disableCheck !== undefined && typeof value.disableCheck !== "boolean")
    throw invalid(source, "disableCheck must be a boolean");
  return {
    ...(value as object),
    cniVersion,
    name: value.name,
    plugins,
  } as NetConfList;
}

export function parseConfText(text: string, source: string, single: boolean): NetConfList {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw invalid(source, `not valid JSON (${(err as Error).message})`);
  }
  return parseConfList(value, source, single);
}

export function embeddedConfList(): LoadedConfList {
  return { list: parseConfText(defaultConflistText, EMBEDDED_SOURCE, false), source: EMBEDDED_SOURCE };
}

/** The network configuration to use: the conf dir's first file, else the embedded default. */
export function loadConfList(
  confDir = process.env.BEETROOT_CNI_CONF_DIR ?? DEFAULT_CONF_DIR,
): LoadedConfList {
  let names: string[];
  try {
    names = readdirSync(confDir);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "ENOENT") return embeddedConfList();
    throw new NetworkError(
      "FailedPrecondition",
      `cannot read CNI conf dir ${confDir}: ${(err as Error).message}`,
    );
  }
  const candidates = names.filter((n) => /\.(conflist|conf|json)$/.test(n)).sort();
  const first = candidates[0];
  if (first === undefined) return embeddedConfList();
  const file = join(confDir, first);
  let text: string;
  try {
    text = readFileSync(file, "utf8");
  } catch (err) {
    throw new NetworkError(
      "FailedPrecondition",
      `cannot read CNI configuration ${file}: ${(err as Error).message}`,
    );
  }
  return { list: parseConfText(text, file, !first.endsWith(".conflist")), source: file };
}
