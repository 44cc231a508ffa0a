import { describe, expect, it } from "vitest";
import type { OciSpec } from "./oci.ts";
import { GUEST_OVERHEAD_MIB, vmSizeFor } from "./vm-size.ts";

const host = { cpus: 8, memoryMib: 16_384 };
const spec = (s: Partial<OciSpec>): OciSpec => s as OciSpec;

describe("vmSizeFor", () => {
  it("uses the configured defaults when nothing sizes the VM", () => {
    expect(vmSizeFor(spec({}), host)).toEqual({ cpus: 1, memoryMib: 512, source: "defaults" });
    expect(vmSizeFor(spec({}), host, { cpus: 2, memoryMib: 2048 })).toEqual({
      cpus: 2,
      memoryMib: 2048,
      source: "defaults",
    });
  });

  it("lets annotations win, then CRI sandbox totals, then the container's limits", () => {
    const annotated = spec({
      annotations: { "io.beetroot.vm.cpus": "3", "io.beetroot.vm.memory_mib": "1024" },
      linux: { resources: { memory: { limit: 8 * 2 ** 30 } } },
    } as Partial<OciSpec>);
    expect(vmSizeFor(annotated, host)).toMatchObject({ cpus: 3, memoryMib: 1024 });
    const cri = spec({
      annotations: {
        "io.kubernetes.cri.sandbox-cpu-quota": "250000",
        "io.kubernetes.cri.sandbox-cpu-period": "100000",
        "io.kubernetes.cri.sandbox-memory": String(2 * 2 ** 30),
      },
    });
    expect(vmSizeFor(cri, host)).toMatchObject({ cpus: 3, memoryMib: 2048 + GUEST_OVERHEAD_MIB });
    // A small limit still gets at least the configured default.
    const small = spec({ linux: { resources: { memory: { limit: 64 * 2 ** 20 } } } } as Partial<OciSpec>);
    expect(vmSizeFor(small, host, { cpus: 1, memoryMib: 768 }).memoryMib).toBe(768);
  });

  it("clamps to the host and refuses malformed annotations", () => {
    const big = spec({ annotations: { "io.beetroot.vm.cpus": "64", "io.beetroot.vm.memory_mib": "999999" } });
    expect(vmSizeFor(big, host)).toMatchObject({ cpus: 8, memoryMib: 16_384 });
    expect(() => vmSizeFor(spec({ annotations: { "io.beetroot.vm.cpus": "two" } }), host)).toThrow(
      /not a positive integer/,
    );
    expect(() => vmSizeFor(spec({ annotations: { "io.beetroot.vm.memory_mib": "64" } }), host)).toThrow(
      /at least 128 MiB/,
    );
  });
});
