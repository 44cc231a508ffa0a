/**
 * System.ConfigureNetwork and System.NetworkStatus: the guest half of the pod network. The host
 * spliced the VM's NICs onto the pod interfaces (internal/network) and sends what those interfaces
 * held; this applies it once, writes resolv.conf where container bundles can bind it, and answers
 * with what the kernel then holds. The netlink work sits behind `GuestNetworkOps`
 * (guest/network/guest-ops.ts, through vminitd's addon), created on first use.
 */
import type { MessageInitShape } from "@bufbuild/protobuf";
import type {
  ConfigureNetworkRequest,
  ConfigureNetworkResponseSchema,
  NetworkStatusResponseSchema,
} from "../../api/gen/beetroot/guest/v1/system_pb.ts";
import { NetworkError } from "../../internal/rtnetlink/errors.ts";
import { Code, TtrpcError } from "../../internal/ttrpc/index.ts";
import type { GuestNetworkOps } from "../network/guest-ops.ts";
import { configFromRequest, networkStatusMessage } from "../network/wire.ts";
import type { Logger } from "./log.ts";

/**
 * Where the pod's resolv.conf lives in the guest (tmpfs /run). A container whose spec has no
 * resolv.conf of its own gets it bound read-only at /etc/resolv.conf.
 */
export const RESOLV_CONF_PATH = "/run/beetroot/resolv.conf";

type ConfigureNetworkResponseInit = MessageInitShape<typeof ConfigureNetworkResponseSchema>;
type NetworkStatusInit = MessageInitShape<typeof NetworkStatusResponseSchema>;

type State =
  | { readonly kind: "unconfigured" }
  | { readonly kind: "configuring" }
  | { readonly kind: "configured"; readonly key: string; readonly resolvConf: string }
  | { readonly kind: "failed"; readonly error: string };

const GRPC_CODES: Readonly<Record<NetworkError["code"], number>> = {
  InvalidArgument: Code.InvalidArgument,
  NotFound: Code.NotFound,
  AlreadyExists: Code.AlreadyExists,
  FailedPrecondition: Code.FailedPrecondition,
  ResourceExhausted: Code.ResourceExhausted,
  Unavailable: Code.Unavailable,
  Internal: Code.Internal,
};

function asTtrpc(err: unknown): TtrpcError {
  if (err instanceof TtrpcError) return err;
  if (err instanceof NetworkError) return new TtrpcError(GRPC_CODES[err.code], err.message);
  return TtrpcError.from(err);
}

export class GuestNetworkService {
  private state: State = { kind: "unconfigured" };
  private opsPromise: Promise<GuestNetworkOps> | undefined;

  constructor(
    private readonly loadOps: () => Promise<GuestNetworkOps> | GuestNetworkOps,
    private readonly opts: { readonly log?: Logger; readonly resolvConfPath?: string } = {},
  ) {}

  private ops(): Promise<GuestNetworkOps> {
    this.opsPromise ??= Promise.resolve().then(() => this.loadOps());
    return this.opsPromise;
  }

  private get resolvConfPath(): string {
    return this.opts.resolvConfPath ?? RESOLV_CONF_PATH;
  }

  async configure(req: ConfigureNetworkRequest): Promise<ConfigureNetworkResponseInit> {
    const started = performance.now();
    let config: ReturnType<typeof configFromRequest>;
    try {
      config = configFromRequest(req);
    } catch (err) {
      throw asTtrpc(err);
    }
    const key = JSON.stringify(config);
    const s = this.state;
    if (s.kind === "configuring")
      throw new TtrpcError(Code.FailedPrecondition, "the network is being configured by another call");
    if (s.kind === "failed")
      throw new TtrpcError(
        Code.FailedPrecondition,
        `an earlier ConfigureNetwork failed half-way (${s.error}); the VM's network is in an unknown state`,
      );
    const ops = await this.ops();
    if (s.kind === "configured") {
      // A retry after a lost reply gets the same answer; anything else would stack addresses.
      if (s.key !== key)
        throw new TtrpcError(
          Code.FailedPrecondition,
          "the network is already configured with a different config (ConfigureNetwork is once per VM)",
        );
      return this.answer(ops, s.resolvConf, started);
    }
    this.state = { kind: "configuring" };
    let resolvConf: string;
    try {
      resolvConf = ops.apply(config);
      ops.writeFile(this.resolvConfPath, resolvConf);
    } catch (err) {
      const e = asTtrpc(err);
      // Links may be half-configured now; a second attempt would trip over what the first did.
      this.state = { kind: "failed", error: e.message };
      this.opts.log?.error("network configuration failed", { error: e.message });
      throw e;
    }
    this.state = { kind: "configured", key, resolvConf };
    this.opts.log?.info("network configured", {
      interfaces: config.interfaces.map((i) => `${i.name}=${i.addresses.join("+")}`).join(","),
      routes: config.routes.length,
      nameservers: config.dns.nameservers.join(","),
    });
    return this.answer(ops, resolvConf, started);
  }

  private answer(ops: GuestNetworkOps, resolvConf: string, started: number): ConfigureNetworkResponseInit {
    return {
      status: networkStatusMessage(ops.read()),
      resolvConfPath: this.resolvConfPath,
      resolvConf,
      durationSeconds: (performance.now() - started) / 1000,
    };
  }

  async status(): Promise<NetworkStatusInit> {
    try {
      return networkStatusMessage((await this.ops()).read());
    } catch (err) {
      throw asTtrpc(err);
    }
  }
}
