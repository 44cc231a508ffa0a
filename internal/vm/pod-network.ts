import { existsSync } from "node:fs";
import {
  type ConfigureNetworkResponse,
  type NetworkStatusResponse,
  System,
} from "../../api/gen/beetroot/guest/v1/system_pb.ts";
import { configureNetworkRequest } from "../../guest/network/wire.ts";
import { allReleasers } from "../cleanup/releasers.ts";
import type { BeetrootPaths } from "../config/paths.ts";
import type { Logger } from "../log/logger.ts";
import {
  createNetwork,
  hostDns,
  type NetworkAttachment,
  type NetworkOptions,
  netnsRequestFromSpec,
} from "../network/network.ts";
import { errorText, NetworkError, type NetworkErrorCode } from "../rtnetlink/errors.ts";
import type { GuestNetworkConfig } from "../rtnetlink/netconfig.ts";
import { releaseAll, releaseContext } from "../state/gc.ts";
import { type Ledger, openLedger } from "../state/ledger.ts";
import { type Client, Code, codeName, isTtrpcError } from "../ttrpc/index.ts";
import { GUEST_BUILD_COMMAND } from "./assets-check.ts";
import type { Vm, VmExit, Vmm, VmSpec } from "./vm.ts";

/**
 * A VM on its pod network, end to end: internal/network splices TAPs onto the pod interfaces,
 * the launcher hands the TAP descriptors to QEMU, vminitd configures the NICs
 * (System.ConfigureNetwork), and everything is undone in the one safe order — VM first (QEMU holds
 * the TAPs), then the TAPs and tc redirects, CNI DEL, and the namespace last (the bridge plugin
 * finds its masquerade rules through the namespace). Every resource is in one ledger, so `delete`
 * and `beetroot gc` (allReleasers) finish the job after a crash.
 */

export interface PodNetworkOptions {
  readonly ledger: Ledger;
  readonly log: Logger;
  /** CNI_CONTAINERID: the pod's (sandbox's) id. */
  readonly containerId: string;
  /**
   * The OCI spec: its `linux.namespaces` network entry picks managed mode (no path), attach mode
   * (a path, CRI ran CNI) or refusal (no entry: host networking, InvalidArgument).
   */
  readonly spec: unknown;
  /** internal/network options besides ledger and log (conf list, CNI runtime, addon): tests, bench. */
  readonly network?: Omit<NetworkOptions, "ledger" | "log">;
}

export interface PodNetwork {
  readonly attachment: NetworkAttachment;
  /** Hand these to the launcher (VmSpec.nics). */
  readonly nics: NetworkAttachment["nics"];
  readonly guestConfig: GuestNetworkConfig;
  /** Closes this process' TAP descriptors: call once launch() settled (QEMU has its copies, or is gone). */
  handedOver(): void;
  /** System.ConfigureNetwork on the booted VM; checks the guest's answer against the config. */
  configureGuest(guest: Client, opts?: { timeoutMs?: number }): Promise<ConfigureNetworkResponse>;
  /** Stop the VM first. Then TAPs and tc, CNI DEL, the namespace. Idempotent. */
  teardown(): Promise<void>;
}

const GUEST_CONFIGURE_TIMEOUT_MS = 30_000;

/**
 * The host file a spec binds at /etc/resolv.conf (CRI writes one per pod with the cluster's DNS;
 * nerdctl too). Under runc that file is the container's DNS; in a VM the host path means nothing,
 * so its content becomes the guest config's DNS and vminitd binds the rendered copy instead.
 */
export function specResolvConf(spec: unknown): string | undefined {
  const mounts = (spec as { mounts?: unknown } | null)?.mounts;
  if (!Array.isArray(mounts)) return undefined;
  for (const m of mounts as {
    destination?: unknown;
    source?: unknown;
    type?: unknown;
    options?: unknown;
  }[]) {
    if (m?.destination !== "/etc/resolv.conf" || typeof m.source !== "string" || !m.source.startsWith("/"))
      continue;
    const options = Array.isArray(m.options) ? m.options : [];
    if (m.type === "bind" || m.type === "rbind" || options.includes("bind") || options.includes("rbind"))
      return m.source;
  }
  return undefined;
}

/** Sets up the pod network for a VM that is about to boot. On failure nothing is left. */
export async function attachPodNetwork(opts: PodNetworkOptions): Promise<PodNetwork> {
  const request = netnsRequestFromSpec(opts.spec);
  const network = createNetwork({ ...opts.network, ledger: opts.ledger, log: opts.log });
  const attachment = await network.setup(opts.containerId, request);
  const resolvConf = specResolvConf(opts.spec);
  let guestConfig = attachment.guestConfig;
  if (resolvConf !== undefined && !existsSync(resolvConf)) {
    opts.log.warn("the spec binds a resolv.conf that does not exist; the guest keeps the pod network's DNS", {
      file: resolvConf,
    });
  } else if (resolvConf !== undefined) {
    guestConfig = { ...guestConfig, dns: hostDns(resolvConf) };
    opts.log.info("guest DNS from the spec's resolv.conf", {
      file: resolvConf,
      nameservers: guestConfig.dns.nameservers.join(","),
    });
  }
  return {
    attachment,
    nics: attachment.nics,
    guestConfig,
    handedOver: () => network.closeTapFds(),
    configureGuest: (guest, o = {}) => configureGuestNetwork(guest, guestConfig, { ...o, log: opts.log }),
    teardown: () => network.teardown(),
  };
}

/**
 * Sends the config to vminitd and checks the kernel's view it answers with: every interface by
 * name with the pod MAC, MTU, link up, and every address. Errors are NetworkErrors with the code
 * the shim answers containerd with.
 */
export async function configureGuestNetwork(
  guest: Client,
  config: GuestNetworkConfig,
  opts: { timeoutMs?: number; log?: Logger } = {},
): Promise<ConfigureNetworkResponse> {
  let res: ConfigureNetworkResponse;
  try {
    res = await guest.service(System).configureNetwork(configureNetworkRequest(config), {
      timeoutMs: opts.timeoutMs ?? GUEST_CONFIGURE_TIMEOUT_MS,
    });
  } catch (err) {
    if (isTtrpcError(err, Code.Unimplemented))
      throw new NetworkError(
        "FailedPrecondition",
        `the guest image has no System.ConfigureNetwork (built before it existed): rebuild it with \`${GUEST_BUILD_COMMAND}\``,
        { cause: err },
      );
    if (isTtrpcError(err))
      throw new NetworkError(networkCode(err.code), `guest network configuration failed: ${err.message}`, {
        cause: err,
      });
    throw new NetworkError("Unavailable", `guest network configuration failed: ${errorText(err)}`, {
      cause: err,
    });
  }
  const problems = guestNetworkMismatches(config, res.status);
  if (problems.length > 0)
    throw new NetworkError(
      "Internal",
      `the guest reports a network other than the one it was sent: ${problems.join("; ")}`,
    );
  opts.log?.info("guest network configured", {
    interfaces: config.interfaces.map((i) => `${i.name}=${i.addresses.join("+")}`).join(","),
    routes: config.routes.length,
    resolv_conf: res.resolvConfPath,
    guest_ms: Math.round(res.durationSeconds * 1000),
  });
  return res;
}

function networkCode(code: number): NetworkErrorCode {
  const name = codeName(code);
  const known: readonly NetworkErrorCode[] = [
    "InvalidArgument",
    "NotFound",
    "AlreadyExists",
    "FailedPrecondition",
    "ResourceExhausted",
    "Unavailable",
  ];
  return (known as readonly string[]).includes(name) ? (name as NetworkErrorCode) : "Internal";
}

/** What in the guest's reported state contradicts the config (empty when it holds all of it). */
export function guestNetworkMismatches(
  config: GuestNetworkConfig,
  status: NetworkStatusResponse | undefined,
): string[] {
  if (!status) return ["the answer has no status"];
  const out: string[] = [];
  for (const want of config.interfaces) {
    const got = status.interfaces.find((i) => i.name === want.name);
    if (!got) {
      out.push(`no interface ${want.name}`);
      continue;
    }
    if (got.mac !== want.mac) out.push(`${want.name} has MAC ${got.mac}, not ${want.mac}`);
    if (got.mtu !== want.mtu) out.push(`${want.name} has MTU ${got.mtu}, not ${want.mtu}`);
    if (!got.up) out.push(`${want.name} is down`);
    for (const a of want.addresses)
      if (!got.addresses.includes(a)) out.push(`${want.name} lacks address ${a}`);
  }
  for (const r of config.routes) {
    const found = status.routes.some(
      (g) => g.dst === r.dst && g.interface === r.interface && g.gateway === r.gateway,
    );
    if (!found) out.push(`no route ${r.dst}${r.gateway ? ` via ${r.gateway}` : ""} dev ${r.interface}`);
  }
  return out;
}

// ---- the whole sequence --------------------------------------------------------------------

export interface PodVmOptions {
  readonly vmm: Vmm;
  /** The VM's shape; nics and ledger are filled in here. */
  readonly spec: Omit<VmSpec, "nics" | "ledger">;
  /** The OCI spec of the pod's first (sandbox) container. */
  readonly ociSpec: unknown;
  /** CNI_CONTAINERID (the pod id). */
  readonly containerId: string;
  readonly paths: BeetrootPaths;
  readonly log: Logger;
  /**
   * The ledger for the VM and its network. Default: `vm-<id>` opened here (leftovers of a crashed
   * VM with that id are released first) and closed by stop().
   */
  readonly ledger?: Ledger;
  readonly network?: PodNetworkOptions["network"];
  readonly signal?: AbortSignal;
}

export interface PodVm {
  readonly vm: Vm;
  readonly network: PodNetwork;
  /** vminitd's answer to ConfigureNetwork: the guest's interfaces and routes, resolv.conf path. */
  readonly guestNetwork: ConfigureNetworkResponse;
  /** Stops the VM, then tears the network down, then closes the ledger (if opened here). Once. */
  stop(opts?: { timeoutMs?: number }): Promise<VmExit>;
}

/** Network, VM, guest network configuration; on any failure everything made so far is undone. */
export async function launchPodVm(opts: PodVmOptions): Promise<PodVm> {
  const ownLedger = opts.ledger ? undefined : await openVmLedger(`vm-${opts.spec.id}`, opts.paths, opts.log);
  const ledger = opts.ledger ?? ownLedger!;
  const closeLedger = async () => {
    await ownLedger?.close();
  };
  let network: PodNetwork;
  try {
    network = await attachPodNetwork({
      ledger,
      log: opts.log,
      containerId: opts.containerId,
      spec: opts.ociSpec,
      ...(opts.network && { network: opts.network }),
    });
  } catch (err) {
    await closeLedger();
    throw err;
  }
  let vm: Vm | undefined;
  try {
    try {
      vm = await opts.vmm.launch({ ...opts.spec, nics: network.nics, ledger }, { signal: opts.signal });
    } finally {
      network.handedOver();
    }
    const guestNetwork = await network.configureGuest(vm.guest);
    const running = vm;
    let stopping: Promise<VmExit> | undefined;
    return {
      vm: running,
      network,
      guestNetwork,
      stop: (o) => {
        stopping ??= (async () => {
          const exit = await running.stop(o);
          await network.teardown();
          await closeLedger();
          return exit;
        })();
        return stopping;
      },
    };
  } catch (err) {
    const undo: string[] = [];
    if (vm) await vm.stop().catch((e: unknown) => undo.push(`VM stop: ${errorText(e)}`));
    await network.teardown().catch((e: unknown) => undo.push(errorText(e)));
    await closeLedger().catch((e: unknown) => undo.push(`ledger close: ${errorText(e)}`));
    if (undo.length > 0)
      opts.log.error("undoing a failed pod VM launch left resources (gc will retry)", {
        error: undo.join("; "),
      });
    throw err;
  }
}

/**
 * How long a launch waits for the VM ledger of the same id to be let go. containerd's Delete of a
 * pod's last container returns while its shim still powers the VM off (~0.2 s, up to the guest's
 * shutdown grace), so `ctr run --rm` of the same id again may arrive while the old ledger is held.
 */
const PREVIOUS_VM_WAIT_MS = 20_000;

/** Opens the VM's ledger and releases what a crashed VM with the same id left in it. */
async function openVmLedger(owner: string, paths: BeetrootPaths, log: Logger): Promise<Ledger> {
  const ledger = await openLedger(owner, paths, { waitMs: PREVIOUS_VM_WAIT_MS });
  if ((await ledger.list()).length > 0) {
    log.warn("releasing leftovers of a crashed VM with the same id", { owner });
    const { failed } = await releaseAll(ledger, allReleasers(), releaseContext(paths, log));
    if (failed.length > 0) {
      await ledger.close();
      throw new Error(
        `leftovers of a previous VM (${owner}) cannot be released: ${failed.map((f) => `${f.resource}: ${f.error}`).join("; ")}`,
      );
    }
  }
  return ledger;
}
