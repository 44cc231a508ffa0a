import { loadConfList } from "../../internal/network/cni/config.ts";
import { createNetwork } from "../../internal/network/network.ts";
import { openLedger } from "../../internal/state/ledger.ts";

/**
 * A network owner that dies hard: sets up a managed pod network, prints what it made, and then
 * waits to be killed with SIGKILL (no teardown runs), leaving only its ledger behind.
 * argv: libDir owner confDir containerId
 */
const [libDir, owner, confDir, containerId] = process.argv.slice(2);
if (!libDir || !owner || !confDir || !containerId)
  throw new Error("usage: owner.mjs libDir owner confDir containerId");
const ledger = await openLedger(owner, { libDir });
const network = createNetwork({ ledger, confList: loadConfList(confDir) });
const att = await network.setup(containerId, { kind: "managed" });
process.stdout.write(
  `${JSON.stringify({ netns: att.netns, address: att.guestConfig.interfaces[0]?.addresses[0] })}\n`,
);
setInterval(() => undefined, 1 << 30);
