/**
 * The Bun side of System.ConfigureNetwork / NetworkStatus: apply a config through the FFI
 * rtnetlink socket, read the kernel's view back, and write resolv.conf. It loads vminitd's native
 * addon: vminitd's main.ts hands it to the System service, which names only its type, so the
 * service logic around it stays testable under Node.
 */
import { mkdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname } from "node:path";
import type { GuestNetworkConfig } from "../../internal/rtnetlink/netconfig.ts";
import { Rtnl } from "../../internal/rtnetlink/rtnl.ts";
import { applyNetworkConfig } from "./apply.ts";
import { netlinkTransport } from "./netlink-socket.ts";
import { type NetworkState, readNetworkState } from "./status.ts";

export interface GuestNetworkOps {
  /** Configures the NICs; returns the resolv.conf text for the config's DNS. */
  apply(config: GuestNetworkConfig): string;
  read(): NetworkState;
  /** Atomically replaces `path` (mode 0644), creating its directory. */
  writeFile(path: string, text: string): void;
}

export function bunNetworkOps(): GuestNetworkOps {
  return {
    apply: (config) => applyNetworkConfig(config).resolvConf,
    read: () => {
      const rtnl = Rtnl.over(netlinkTransport());
      try {
        return readNetworkState(rtnl);
      } finally {
        rtnl.close();
      }
    },
    writeFile: (path, text) => {
      mkdirSync(dirname(path), { recursive: true, mode: 0o755 });
      const tmp = `${path}.tmp`;
      writeFileSync(tmp, text, { mode: 0o644 });
      renameSync(tmp, path);
    },
  };
}
