import { readdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { skipReason } from "./fixtures/skip.ts";
import { leftovers, missingVmAssets, NOTHING_LEFT, type VmTestEnv, vmTestEnv } from "./vm-support.ts";

/**
 * 20 boot/stop cycles: after each one no process, socket, file, run dir or ledger is left, and the
 * launcher's own process does not accumulate file descriptors.
 */
const missing = skipReason(import.meta.url, missingVmAssets());

const CYCLES = 20;
const openFds = () => readdirSync("/proc/self/fd").length;

describe.skipIf(missing)(`${CYCLES} boot/stop cycles`, () => {
  let env: VmTestEnv;
  beforeAll(async () => {
    env = await vmTestEnv();
  });
  afterAll(() => env?.cleanup());

  it("leave nothing behind", async () => {
    const fdsBefore = openFds();
    const totals: number[] = [];
    for (let i = 0; i < CYCLES; i++) {
      const vm = await env.host.vmm.launch(env.host.spec(`cycle-${i}`));
      totals.push(vm.timings.totalMs);
      const exit = await vm.stop();
      expect(exit).toEqual({ state: "stopped" });
      expect(leftovers(env)).toEqual(NOTHING_LEFT);
    }
    const fdsAfter = openFds();
    const sorted = [...totals].sort((a, b) => a - b);
    console.log(
      `${CYCLES} cycles: boot median ${sorted[Math.floor(CYCLES / 2)]!.toFixed(0)} ms, max ${sorted.at(-1)!.toFixed(0)} ms; fds ${fdsBefore} → ${fdsAfter}`,
    );
    // A few fds come and go with the test runner itself; a leak would grow with every cycle.
    expect(fdsAfter - fdsBefore).toBeLessThan(5);
  });
});
