import { describe, expect, it } from "vitest";
import { shimSocketAddress, socketPath } from "./socket-address.ts";

// Golden digests from `printf '%s' "<address>/<ns>/<id>" | sha256sum`, the input containerd hashes.
describe("shimSocketAddress", () => {
  it("hashes filepath.Join(address, ns, id) under /run/containerd/s", () => {
    expect(
      shimSocketAddress({
        containerdAddress: "/run/containerd/containerd.sock",
        namespace: "default",
        id: "abc",
      }),
    ).toBe("unix:///run/containerd/s/8cb244a719603fe00870d5ce1d8e1f1db43a654cb993d107df1f1ae23ddffa59");
  });

  it("appends /debug for the debug socket and honours a socket root", () => {
    expect(
      shimSocketAddress({
        socketRoot: "/tmp/x/s",
        containerdAddress: "/run/containerd/containerd.sock/",
        namespace: "k8s.io",
        id: "pod1",
        debug: true,
      }),
    ).toBe("unix:///tmp/x/s/ddbdfb7af5ceff24b0d2ddc30aff7f5124fd781c8851437485f62039b920b4e2");
  });

  it("refuses an empty namespace and over-long socket roots", () => {
    expect(() => shimSocketAddress({ containerdAddress: "a", namespace: "", id: "x" })).toThrow("namespace");
    expect(() =>
      shimSocketAddress({
        socketRoot: `/${"d".repeat(60)}`,
        containerdAddress: "a",
        namespace: "n",
        id: "x",
      }),
    ).toThrow(/longer than 106 bytes/);
  });

  it("socketPath strips unix:// and rejects other schemes", () => {
    expect(socketPath("unix:///a/b")).toBe("/a/b");
    expect(() => socketPath("vsock://3:1")).toThrow("not a unix:// socket address");
  });
});
