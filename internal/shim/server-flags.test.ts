import { describe, expect, it } from "vitest";
import {
  restoreCallerNodeOptions,
  SERVER_NODE_OPTIONS,
  SERVER_NODE_OPTIONS_ENV,
  SERVER_NODE_OPTIONS_OVERRIDE_ENV,
  SERVER_RUNTIME_V8_FLAGS,
  serverEnv,
  serverRuntimeV8Flags,
} from "./server-flags.ts";

describe("server NODE_OPTIONS", () => {
  it("gives the server our flags and keeps the caller's aside", () => {
    const env = serverEnv({ PATH: "/bin", NODE_OPTIONS: "--trace-warnings" });
    expect(env.NODE_OPTIONS).toBe(SERVER_NODE_OPTIONS.join(" "));
    expect(env[SERVER_NODE_OPTIONS_ENV]).toBe("--trace-warnings");
    expect(env.PATH).toBe("/bin");
  });

  it("takes an override, empty meaning no flags", () => {
    expect(serverEnv({ [SERVER_NODE_OPTIONS_OVERRIDE_ENV]: "" }).NODE_OPTIONS).toBe("");
    expect(serverEnv({ [SERVER_NODE_OPTIONS_OVERRIDE_ENV]: "--jitless" }).NODE_OPTIONS).toBe("--jitless");
  });

  it("restores what the caller had, so the server's children never inherit ours", () => {
    const had = serverEnv({ NODE_OPTIONS: "--trace-warnings" });
    restoreCallerNodeOptions(had);
    expect(had.NODE_OPTIONS).toBe("--trace-warnings");
    expect(had[SERVER_NODE_OPTIONS_ENV]).toBeUndefined();

    const none = serverEnv({});
    restoreCallerNodeOptions(none);
    expect("NODE_OPTIONS" in none).toBe(false);
    expect(none[SERVER_NODE_OPTIONS_ENV]).toBeUndefined();
  });

  it("leaves a process start did not spawn alone", () => {
    const env: NodeJS.ProcessEnv = { NODE_OPTIONS: "--inspect" };
    restoreCallerNodeOptions(env);
    expect(env.NODE_OPTIONS).toBe("--inspect");
  });
});

describe("server run-time V8 flags", () => {
  it("are set only in a server that started jitless (--lite-mode would turn the JIT off mid-run)", () => {
    expect(serverRuntimeV8Flags(serverEnv({}).NODE_OPTIONS)).toEqual(SERVER_RUNTIME_V8_FLAGS);
    expect(serverRuntimeV8Flags("--max-semi-space-size=1  --jitless")).toEqual(SERVER_RUNTIME_V8_FLAGS);
    expect(serverRuntimeV8Flags("")).toEqual([]);
    expect(serverRuntimeV8Flags(undefined)).toEqual([]);
    expect(serverRuntimeV8Flags("--jitless-not")).toEqual([]);
  });
});
