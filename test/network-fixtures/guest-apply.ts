// Run by Bun inside a network namespace: applies the config given as argv[2] like vminitd would.
import { applyNetworkConfig } from "../../guest/network/apply.ts";

const applied = applyNetworkConfig(JSON.parse(process.argv[2] ?? "null"));
process.stdout.write(`${JSON.stringify({ resolvConf: applied.resolvConf })}\n`);
