/** beetroot.guest.v1.System as served by vminitd. */
import type { System } from "../../api/gen/beetroot/guest/v1/system_pb.ts";
import { Code, type ServiceImpl, TtrpcError } from "../../internal/ttrpc/index.ts";
import type { HealthInit, InfoInit } from "./info.ts";
import type { GuestNetworkService } from "./network-service.ts";
import { type SelfTests, UnknownSelfTestError } from "./selftests.ts";

export const DEFAULT_GRACE_SECONDS = 10;
export const MAX_GRACE_SECONDS = 300;

export interface SystemServiceDeps {
  info(): Promise<InfoInit>;
  health(): HealthInit;
  /**
   * Starts the power-off sequence without waiting for it: the reply must leave before the link
   * closes (the sequence closes it gracefully after the processes are gone).
   */
  beginShutdown(reason: string, graceSeconds: number): void;
  readonly selfTests: SelfTests;
  /**
   * ConfigureNetwork / NetworkStatus. vminitd passes the addon's netlink implementation
   * (guest/network/guest-ops.ts); this module only names the type, so it loads under Node too.
   */
  readonly network: GuestNetworkService;
}

export function systemService(deps: SystemServiceDeps): ServiceImpl<typeof System> {
  const { network } = deps;
  return {
    info: () => deps.info(),
    health: () => deps.health(),
    shutdown: (req) => {
      // proto3 cannot tell "0" from "unset": 0 means the default grace, not an immediate SIGKILL.
      const grace = req.graceSeconds === 0 ? DEFAULT_GRACE_SECONDS : req.graceSeconds;
      if (grace > MAX_GRACE_SECONDS) {
        throw new TtrpcError(Code.InvalidArgument, `grace_seconds ${grace} exceeds ${MAX_GRACE_SECONDS}`);
      }
      setImmediate(() => deps.beginShutdown("System.Shutdown from the host", grace));
      return {};
    },
    selfTest: async (req) => {
      try {
        return await deps.selfTests.execute(req.name);
      } catch (err) {
        if (err instanceof UnknownSelfTestError) throw new TtrpcError(Code.NotFound, err.message);
        throw err;
      }
    },
    configureNetwork: (req) => network.configure(req),
    networkStatus: () => network.status(),
  };
}
