import { describe, expect, it } from "vitest";
import { DEFAULT_DIAL_TIMEOUT_MS, DEFAULT_PORT, parseBootParams, splitCmdline } from "./cmdline.ts";

describe("splitCmdline", () => {
  it("splits on whitespace and keeps quoted spaces", () => {
    expect(splitCmdline('console=ttyS0  a="b c" quiet\n')).toEqual(["console=ttyS0", "a=b c", "quiet"]);
  });
  it("keeps an explicitly empty quoted word", () => {
    expect(splitCmdline('x "" y')).toEqual(["x", "", "y"]);
  });
});

describe("parseBootParams", () => {
  const base = "console=ttyS0 root=/dev/vda rootfstype=erofs ro init=/sbin/init quiet";

  it("reads every beetroot parameter", () => {
    const p = parseBootParams(
      `${base} beetroot.port=2049 beetroot.hostname=pod-1.test beetroot.time=1732456789123 beetroot.dial_timeout_ms=5000`,
    );
    expect(p).toEqual({
      port: 2049,
      hostname: "pod-1.test",
      hostTimeMs: 1732456789123,
      dialTimeoutMs: 5000,
      logLevel: "info",
      problems: [],
    });
  });

  it("falls back to defaults when parameters are absent", () => {
    expect(parseBootParams(base)).toEqual({
      port: DEFAULT_PORT,
      hostname: undefined,
      hostTimeMs: undefined,
      dialTimeoutMs: DEFAULT_DIAL_TIMEOUT_MS,
      logLevel: "info",
      problems: [],
    });
  });

  it("reports malformed values and uses the defaults instead", () => {
    const p = parseBootParams(
      `${base} beetroot.port=0x10 beetroot.hostname=-bad- beetroot.time=-5 beetroot.dial_timeout_ms=99999999999`,
    );
    expect(p.port).toBe(DEFAULT_PORT);
    expect(p.hostname).toBeUndefined();
    expect(p.hostTimeMs).toBeUndefined();
    expect(p.dialTimeoutMs).toBe(DEFAULT_DIAL_TIMEOUT_MS);
    expect(p.problems).toEqual([
      'beetroot.port: "0x10" is not a decimal integer',
      'beetroot.time: "-5" is not a decimal integer',
      "beetroot.dial_timeout_ms: 99999999999 is outside 1..600000",
      'beetroot.hostname: "-bad-" is not a valid host name',
    ]);
  });

  it("takes a log level, refusing unknown ones", () => {
    expect(parseBootParams("beetroot.log_level=debug").logLevel).toBe("debug");
    const p = parseBootParams("beetroot.log_level=loud");
    expect(p.logLevel).toBe("info");
    expect(p.problems).toEqual(['beetroot.log_level: "loud" is not debug, info, warn or error']);
  });

  it("lets the last occurrence win, as the kernel does", () => {
    expect(parseBootParams("beetroot.port=5 beetroot.port=6").port).toBe(6);
  });

  it("rejects a host name longer than sethostname accepts", () => {
    const p = parseBootParams(`beetroot.hostname=${"a".repeat(65)}`);
    expect(p.hostname).toBeUndefined();
    expect(p.problems[0]).toMatch(/not a valid host name/);
  });
});
