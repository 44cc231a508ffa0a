import { describe, expect, it } from "vitest";
import { FlagError, parseShimFlags, serveArgs } from "./flags.ts";

describe("parseShimFlags", () => {
  it("parses containerd's start command line", () => {
    const f = parseShimFlags([
      "-namespace",
      "k8s.io",
      "-address",
      "/run/containerd/containerd.sock",
      "-publish-binary",
      "/usr/bin/containerd",
      "-id",
      "abc",
      "-debug",
      "start",
    ]);
    expect(f).toMatchObject({
      namespace: "k8s.io",
      address: "/run/containerd/containerd.sock",
      publishBinary: "/usr/bin/containerd",
      id: "abc",
      debug: true,
      action: "start",
      rest: [],
    });
  });

  it("accepts -flag=value, --flag and boolean values", () => {
    const f = parseShimFlags(["--namespace=default", "-debug=false", "-id=x", "-bundle", "/b", "delete"]);
    expect(f).toMatchObject({ namespace: "default", debug: false, id: "x", bundle: "/b", action: "delete" });
  });

  it("treats no action as the long-lived server and stops at the first positional", () => {
    expect(parseShimFlags(["-namespace", "n"]).action).toBe("serve");
    expect(parseShimFlags(["-info"]).info).toBe(true);
    expect(parseShimFlags(["-v"]).version).toBe(true);
    expect(parseShimFlags(["--version"]).version).toBe(true);
    expect(parseShimFlags(["start", "-debug"]).debug).toBe(false);
    expect(parseShimFlags(["--", "start"]).action).toBe("start");
  });

  it("rejects unknown flags, missing values and unknown actions precisely", () => {
    expect(() => parseShimFlags(["-bogus"])).toThrow(new FlagError("flag provided but not defined: -bogus"));
    expect(() => parseShimFlags(["-id"])).toThrow("flag needs an argument: -id");
    expect(() => parseShimFlags(["-debug=maybe"])).toThrow('invalid boolean value "maybe" for -debug');
    expect(() => parseShimFlags(["run"])).toThrow('unknown action "run"');
    expect(() => parseShimFlags(["---x"])).toThrow("bad flag syntax: ---x");
  });

  it("round-trips through serveArgs", () => {
    const f = parseShimFlags([
      "-namespace",
      "n",
      "-address",
      "a",
      "-publish-binary",
      "p",
      "-id",
      "i",
      "-debug",
    ]);
    const back = parseShimFlags(serveArgs(f, "/run/s/x"));
    expect(back).toMatchObject({ namespace: "n", address: "a", publishBinary: "p", id: "i", debug: true });
    expect(back.socket).toBe("/run/s/x");
    expect(back.action).toBe("serve");
  });
});
