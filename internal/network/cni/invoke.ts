import { accessSync, constants } from "node:fs";
import { join } from "node:path";
import { execa } from "execa";
import { NetworkError, type NetworkErrorCode } from "../../rtnetlink/errors.ts";
import type { NetConfList, PluginConf } from "./config.ts";
import { type CniResult, parseCniError, parseCniResult } from "./result.ts";

/**
 * Runs a CNI plugin chain the way the CNI spec (1.0) tells a runtime to: each plugin is an
 * executable from CNI_PATH, called with CNI_COMMAND/CNI_CONTAINERID/CNI_NETNS/CNI_IFNAME/CNI_PATH
 * in its environment and its network configuration on stdin, with `name` and `cniVersion` from
 * the list and, for ADD/CHECK, the previous plugin's result as `prevResult`. DEL runs the chain
 * backwards. Exit status 0 + JSON on stdout is success; otherwise stdout holds `{code,msg,details}`.
 */
export interface CniRuntimeConf {
  readonly containerId: string;
  readonly netns: string;
  readonly ifname: string;
  /** CNI_ARGS pairs (e.g. K8S_POD_NAME); IgnoreUnknown=1 is added. */
  readonly args?: Readonly<Record<string, string>>;
  /** Values for plugins' declared capabilities (portMappings, bandwidth, ...), sent as runtimeConfig. */
  readonly capabilityArgs?: Readonly<Record<string, unknown>>;
}

export const DEFAULT_CNI_PATH = ["/opt/cni/bin", "/usr/lib/cni"];
const CONTAINER_ID_RE = /^[a-zA-Z0-9][a-zA-Z0-9_.-]*$/;
const IFNAME_RE = /^[^\s/:]{1,15}$/;
const PLUGIN_TIMEOUT_MS = 60_000;
/**
 * The plugins' working directory. Never the caller's: a shim's is its bundle, which containerd
 * deletes as soon as it takes the shim for dead (the shim closed its socket on SIGTERM and is still
 * stopping its VM). Spawning from a deleted directory fails with ENOENT before the plugin runs, so
 * every CNI DEL of such a teardown failed and left the lease and the masquerade rules.
 */
const PLUGIN_CWD = "/";

export function cniPathFromEnv(env: NodeJS.ProcessEnv = process.env): string[] {
  const v = env.BEETROOT_CNI_PATH;
  return v ? v.split(":").filter((d) => d !== "") : DEFAULT_CNI_PATH;
}

export function validateRuntimeConf(rt: CniRuntimeConf): void {
  if (!CONTAINER_ID_RE.test(rt.containerId))
    throw new NetworkError(
      "InvalidArgument",
      `CNI container id ${JSON.stringify(rt.containerId)} must match ${CONTAINER_ID_RE}`,
    );
  if (!IFNAME_RE.test(rt.ifname) || rt.ifname === "." || rt.ifname === "..")
    throw new NetworkError("InvalidArgument", `interface name ${JSON.stringify(rt.ifname)} is not valid`);
  if (!rt.netns.startsWith("/"))
    throw new NetworkError("InvalidArgument", `netns path ${rt.netns} is not absolute`);
}

export class CniPluginError extends NetworkError {
  constructor(
    code: NetworkErrorCode,
    message: string,
    readonly plugin: string,
    readonly cniCode?: number,
  ) {
    super(code, message);
    this.name = "CniPluginError";
  }
}

export class CniRuntime {
  constructor(readonly cniPath: readonly string[] = cniPathFromEnv()) {}

  /** Absolute path of a plugin binary, or a precise NotFound-style error. */
  findPlugin(type: string): string {
    for (const dir of this.cniPath) {
      const file = join(dir, type);
      try {
        accessSync(file, constants.X_OK);
        return file;
      } catch {
        // next directory
      }
    }
    throw new NetworkError(
      "FailedPrecondition",
      `CNI plugin "${type}" not found in CNI_PATH ${this.cniPath.join(":")} (install containernetworking-plugins, or set BEETROOT_CNI_PATH)`,
    );
  }

  /** Every plugin of the list must exist before ADD touches anything. */
  checkPlugins(list: NetConfList): void {
    for (const p of list.plugins) this.findPlugin(p.type);
  }

  private stdinFor(list: NetConfList, plugin: PluginConf, rt: CniRuntimeConf, prev?: CniResult): string {
    const conf: Record<string, unknown> = { ...plugin, name: list.name, cniVersion: list.cniVersion };
    if (prev) conf.prevResult = prev.raw;
    const runtimeConfig: Record<string, unknown> = {};
    for (const [cap, on] of Object.entries(plugin.capabilities ?? {})) {
      if (on && rt.capabilityArgs?.[cap] !== undefined) runtimeConfig[cap] = rt.capabilityArgs[cap];
    }
    if (Object.keys(runtimeConfig).length > 0) conf.runtimeConfig = runtimeConfig;
    return JSON.stringify(conf);
  }

  private async exec(
    command: "ADD" | "DEL" | "CHECK",
    list: NetConfList,
    plugin: PluginConf,
    rt: CniRuntimeConf,
    prev?: CniResult,
  ): Promise<string> {
    const bin = this.findPlugin(plugin.type);
    const args = ["IgnoreUnknown=1", ...Object.entries(rt.args ?? {}).map(([k, v]) => `${k}=${v}`)].join(";");
    const env: Record<string, string> = {};
    for (const [k, v] of Object.entries(process.env))
      if (v !== undefined && !k.startsWith("CNI_")) env[k] = v;
    // Plugins run iptables, ip6tables and the like from PATH.
    env.PATH ??= "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
    Object.assign(env, {
      CNI_COMMAND: command,
      CNI_CONTAINERID: rt.containerId,
      CNI_NETNS: rt.netns,
      CNI_IFNAME: rt.ifname,
      CNI_ARGS: args,
      CNI_PATH: this.cniPath.join(":"),
    });
    const r = await execa(bin, [], {
      input: this.stdinFor(list, plugin, rt, prev),
      env,
      extendEnv: false,
      cwd: PLUGIN_CWD,
      reject: false,
      timeout: PLUGIN_TIMEOUT_MS,
      stripFinalNewline: false,
    });
    if (r.timedOut)
      throw new CniPluginError(
        "Unavailable",
        `CNI ${command} ${plugin.type} timed out after ${PLUGIN_TIMEOUT_MS / 1000}s`,
        plugin.type,
      );
    if (r.exitCode === 0) return r.stdout;
    const where = `CNI ${command} of network "${list.name}" failed in plugin ${plugin.type}`;
    // Neither an exit status nor a signal: the plugin never ran (spawn failed). Say why.
    if (r.exitCode === undefined && r.signal === undefined)
      throw new CniPluginError(
        "Internal",
        `${where}: cannot run ${bin}: ${r.originalMessage || r.shortMessage}`,
        plugin.type,
      );
    const e = parseCniError(r.stdout);
    if (!e) {
      const out = `${r.stdout}\n${r.stderr}`.trim().slice(0, 2000);
      throw new CniPluginError(
        "Internal",
        `${where}: exit ${r.exitCode ?? r.signal}${out ? `: ${out}` : ""}`,
        plugin.type,
      );
    }
    const text = `${where}: ${e.msg}${e.details ? `: ${e.details}` : ""} (CNI error code ${e.code})`;
    throw new CniPluginError(codeFor(e.code, e.msg), text, plugin.type, e.code);
  }

  /** ADD through the chain; the last plugin's result. Callers undo a failed ADD with del(). */
  async add(list: NetConfList, rt: CniRuntimeConf): Promise<CniResult> {
    validateRuntimeConf(rt);
    this.checkPlugins(list);
    let prev: CniResult | undefined;
    for (const p of list.plugins) {
      const out = await this.exec("ADD", list, p, rt, prev);
      let json: unknown;
      try {
        json = JSON.parse(out);
      } catch {
        throw new CniPluginError(
          "Internal",
          `CNI ADD ${p.type} printed no JSON result: ${out.slice(0, 500)}`,
          p.type,
        );
      }
      prev = parseCniResult(json, p.type);
    }
    if (!prev) throw new NetworkError("InvalidArgument", `network "${list.name}" has no plugins`);
    return prev;
  }

  /**
   * DEL through the chain in reverse. Every plugin is called even after one fails, so as much
   * as possible is released; the first failure is then thrown (the caller keeps its ledger
   * entry and gc retries). prevResult is optional in DEL: after a crash it is not known.
   */
  async del(list: NetConfList, rt: CniRuntimeConf, prev?: CniResult): Promise<void> {
    validateRuntimeConf(rt);
    const errors: Error[] = [];
    for (const p of [...list.plugins].reverse()) {
      try {
        await this.exec("DEL", list, p, rt, prev);
      } catch (err) {
        errors.push(err as Error);
      }
    }
    if (errors.length === 1) throw errors[0];
    if (errors.length > 1)
      throw new NetworkError("Internal", errors.map((e) => e.message).join("; "), { cause: errors[0] });
  }

  /** CHECK through the chain with the ADD result (skipped when the list says disableCheck). */
  async check(list: NetConfList, rt: CniRuntimeConf, prev: CniResult): Promise<void> {
    validateRuntimeConf(rt);
    if (list.disableCheck) return;
    if (list.cniVersion.startsWith("0.3.")) return; // CHECK arrived with 0.4.0
    for (const p of list.plugins) await this.exec("CHECK", list, p, rt, prev);
  }
}

/** Maps CNI's well-known error codes (and host-local's exhaustion message) onto gRPC code names. */
function codeFor(cniCode: number, msg: string): NetworkErrorCode {
  if (/no IP addresses available|no more addresses|range .*full|exhausted/i.test(msg))
    return "ResourceExhausted";
  switch (cniCode) {
    case 1: // incompatible CNI version
    case 2: // unsupported field in network configuration
    case 4: // invalid environment variables
    case 6: // failed to decode content
    case 7: // invalid network config
      return "InvalidArgument";
    case 3: // container unknown or does not exist
      return "NotFound";
    case 11: // try again later
      return "Unavailable";
    default:
      return "Internal";
  }
}
