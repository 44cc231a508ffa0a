import { describe, expect, it } from "vitest";
import { Code, TtrpcError } from "../ttrpc/index.ts";
import { JsonObject, parseLossless, serializeLossless } from "./lossless-json.ts";
import { specForVmNetwork } from "./pod.ts";

describe("lossless JSON", () => {
  it("round-trips uint64s, member order, duplicates and escapes", () => {
    const text =
      '{"b":1,"10":2,"rlimits":[{"hard":18446744073709551615,"soft":-1.5e+3}],"s":"a\\"\\n","b":null,"t":true,"f":false,"e":{},"a":[]}';
    expect(serializeLossless(parseLossless(text, "x"))).toBe(text);
  });

  it("keeps what a string escape means (not how it was spelled)", () => {
    expect(serializeLossless(parseLossless('"\\u00e9\\/"', "x"))).toBe('"é/"');
  });

  it("ignores whitespace and reads the last of duplicate members", () => {
    const v = parseLossless(' { "k" : 1 ,\n "k" : "two" } ', "x");
    expect(v).toBeInstanceOf(JsonObject);
    expect((v as JsonObject).get("k")).toBe("two");
  });

  it("refuses malformed input as InvalidArgument with the offset", () => {
    for (const bad of ['{"a":1,}', "[1 2]", '{"a":01}', '"\u0001"', "{} x", "", '{"a"}', "nul"]) {
      let err: unknown;
      try {
        parseLossless(bad, "config.json");
      } catch (e) {
        err = e;
      }
      expect(err, bad).toBeInstanceOf(TtrpcError);
      expect((err as TtrpcError).code).toBe(Code.InvalidArgument);
      expect((err as TtrpcError).message).toMatch(/^config\.json is not valid JSON: .* at offset \d+$/);
    }
  });

  it("refuses nesting deeper than 256", () => {
    expect(() => parseLossless(`${"[".repeat(300)}${"]".repeat(300)}`, "x")).toThrow(/nested too deeply/);
  });
});

describe("specForVmNetwork", () => {
  const managed = { mode: "managed" as const, netns: "/run/netns/beetroot-00ff", addresses: [] };
  const bytes = (o: unknown) => Buffer.from(JSON.stringify(o));

  it("gives a pathless network namespace the managed namespace's path, keeping every other byte's meaning", () => {
    const raw = Buffer.from(
      '{"process":{"rlimits":[{"type":"RLIMIT_NOFILE","hard":18446744073709551615,"soft":1024}]},' +
        '"linux":{"namespaces":[{"type":"pid"},{"type":"network"},{"type":"mount"}]}}',
    );
    const out = Buffer.from(specForVmNetwork(raw, managed)).toString();
    expect(out).toBe(
      '{"process":{"rlimits":[{"type":"RLIMIT_NOFILE","hard":18446744073709551615,"soft":1024}]},' +
        '"linux":{"namespaces":[{"type":"pid"},{"type":"network","path":"/run/netns/beetroot-00ff"},{"type":"mount"}]}}',
    );
  });

  it("replaces an empty path too", () => {
    const raw = bytes({ linux: { namespaces: [{ type: "network", path: "" }] } });
    expect(JSON.parse(Buffer.from(specForVmNetwork(raw, managed)).toString())).toEqual({
      linux: { namespaces: [{ type: "network", path: "/run/netns/beetroot-00ff" }] },
    });
  });

  it("forwards the bytes untouched otherwise", () => {
    const withPath = bytes({ linux: { namespaces: [{ type: "network", path: "/proc/7/ns/net" }] } });
    expect(specForVmNetwork(withPath, managed)).toBe(withPath);
    const noNet = bytes({ linux: { namespaces: [{ type: "pid" }] } });
    expect(specForVmNetwork(noNet, managed)).toBe(noNet);
    const pathless = bytes({ linux: { namespaces: [{ type: "network" }] } });
    expect(specForVmNetwork(pathless, undefined)).toBe(pathless);
    expect(specForVmNetwork(pathless, { ...managed, mode: "attach" })).toBe(pathless);
  });
});
