import { describe, expect, it } from "vitest";
import { RESOLV_CONF_PATH } from "../network-service.ts";
import { GUEST_PATHS } from "../paths.ts";

describe("guest paths shared between services", () => {
  it("binds the resolv.conf the network service writes", () => {
    expect(GUEST_PATHS.podResolvConf).toBe(RESOLV_CONF_PATH);
  });
});
