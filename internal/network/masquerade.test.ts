import { describe, expect, it } from "vitest";
import { NetworkError } from "../rtnetlink/errors.ts";
import { embeddedConfList, parseConfList } from "./cni/config.ts";
import { type CommandRunner, embeddedMasquerade, ensureMasquerade, masqueradeRule } from "./masquerade.ts";

/** A fake iptables at the command boundary: the nat POSTROUTING rules it holds, as argument strings. */
function fakeIptables(opts: { failAdd?: string } = {}) {
  const rules: string[] = [];
  const calls: string[] = [];
  const run: CommandRunner = async (file, args) => {
    calls.push(`${file} ${args.join(" ")}`);
    const [wait, table, nat, op, ...rule] = args;
    expect([wait, table, nat]).toEqual(["-w", "-t", "nat"]);
    const key = rule.join(" ");
    if (op === "-C") return { exitCode: rules.includes(key) ? 0 : 1, stderr: "Bad rule" };
    if (opts.failAdd) return { exitCode: 4, stderr: `${opts.failAdd}\n` };
    rules.push(key);
    return { exitCode: 0, stderr: "" };
  };
  return { run, rules, calls };
}

describe("outbound NAT of the embedded network", () => {
  it("is one rule for the embedded conflist's subnet, leaving by any interface but its bridge", () => {
    const m = embeddedMasquerade(embeddedConfList().list);
    expect(m).toEqual({ subnet: "10.123.0.0/16", bridge: "beetroot0" });
    expect(masqueradeRule(m).join(" ")).toBe(
      "POSTROUTING -s 10.123.0.0/16 ! -o beetroot0 -m comment --comment beetroot: outbound NAT for 10.123.0.0/16 -j MASQUERADE",
    );
    // The bridge plugin no longer makes per-container masquerade chains for it.
    expect(embeddedConfList().list.plugins[0]?.ipMasq).toBe(false);
  });

  it("is added once: later setups find it", async () => {
    const ipt = fakeIptables();
    const m = { subnet: "10.123.0.0/16", bridge: "beetroot0" };
    await ensureMasquerade(m, ipt.run);
    await ensureMasquerade(m, ipt.run);
    expect(ipt.rules).toHaveLength(1);
    expect(ipt.calls.map((c) => c.split(" ")[4])).toEqual(["-C", "-A", "-C"]);
  });

  it("a failed add is FailedPrecondition with iptables' own words", async () => {
    const ipt = fakeIptables({
      failAdd: "iptables v1.8.9 (nf_tables): Could not fetch rule set generation id",
    });
    const err = await ensureMasquerade({ subnet: "10.123.0.0/16", bridge: "beetroot0" }, ipt.run).catch(
      (e: unknown) => e,
    );
    expect(err).toBeInstanceOf(NetworkError);
    expect((err as NetworkError).code).toBe("FailedPrecondition");
    expect((err as Error).message).toBe(
      "adding the outbound NAT rule for 10.123.0.0/16 failed: iptables v1.8.9 (nf_tables): Could not fetch rule set generation id",
    );
  });

  it("a conflist that does not start with a bridge plugin and a range is refused", () => {
    const list = parseConfList({ cniVersion: "1.0.0", name: "x", plugins: [{ type: "ptp" }] }, "test");
    expect(() => embeddedMasquerade(list)).toThrow(/no bridge plugin/);
  });
});
