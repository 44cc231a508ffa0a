import { describe, expect, it } from "vitest";
import { runPhases } from "./run-phases.ts";

// Lines as a private containerd 2.1 logged one `ctr run --rm` (trimmed), with another run's lines around it.
const LOG = [
  'time="2026-11-24T22:04:00.100000000Z" level=debug msg="prepare snapshot" key=lab-9 snapshotter=overlayfs',
  'time=2026-11-24T22:04:00.300Z level=info msg="shim serving" runtime=io.containerd.beetroot.v1 namespace=default pid=1 id=lab-9',
  'time="2026-11-24T22:04:03.667624301Z" level=debug msg="prepare snapshot" key=lab-0 parent="sha256:bafb" snapshotter=overlayfs',
  'time="2026-11-24T22:04:03.670837484Z" level=debug msg="get snapshot mounts" key=lab-0 snapshotter=overlayfs',
  'time=2026-11-24T22:04:03.849Z level=info msg="shim serving" runtime=io.containerd.beetroot.v1 namespace=default socket=/run/containerd/s/7f pid=11048 version=0.1.0 id=lab-0',
  'time="2026-11-24T22:04:03.855861195Z" level=info msg="connecting to shim lab-0" address="unix:///run/containerd/s/7f" namespace=default protocol=ttrpc version=3',
  'time=2026-11-24T22:04:03.859Z level=info msg="booting VM" runtime=io.containerd.beetroot.v1 namespace=default id=lab-0 pod=lab-0 cpus=1 memory_mib=512',
  'time=2026-11-24T22:04:05.362Z level=info msg="VM running" runtime=io.containerd.beetroot.v1 namespace=default vm=pod-90c6 accel=tcg boot_ms=1346.9',
  'time=2026-11-24T22:04:05.443Z level=info msg="VM on its pod network" runtime=io.containerd.beetroot.v1 namespace=default id=lab-0 pod=lab-0 vmm_pid=11',
  'time=2026-11-24T22:04:05.639Z level=info msg="container created" runtime=io.containerd.beetroot.v1 namespace=default id=lab-0 pid=41 pod=lab-0',
  'time=2026-11-24T22:04:05.799Z level=info msg="process exited" runtime=io.containerd.beetroot.v1 namespace=default id=lab-0 exec="" status=0',
  'time=2026-11-24T22:04:05.808Z level=info msg="container deleted" runtime=io.containerd.beetroot.v1 namespace=default id=lab-0 exit_status=0',
  'time="2026-11-24T22:04:05.810000000Z" level=info msg="shim disconnected" id=lab-0 namespace=default',
  'time="2026-11-24T22:04:05.900529988Z" level=debug msg="remove snapshot" key=lab-0 snapshotter=overlayfs',
  'time="2026-11-24T22:04:05.932422034Z" level=debug msg="removed snapshot" key=default/6/lab-0 snapshotter=overlayfs',
  'time="2026-11-24T22:04:06.000000000Z" level=debug msg="prepare snapshot" key=lab-1 snapshotter=overlayfs',
  'time=2026-11-24T22:04:06.200Z level=info msg="shim serving" runtime=io.containerd.beetroot.v1 namespace=default pid=2 id=lab-1',
].join("\n");

describe("runPhases", () => {
  it("splits one run's log lines into phases, ignoring other runs' lines", () => {
    expect(runPhases(LOG, "lab-0")).toEqual({
      "ctr → shim serving": 182,
      "serving → VM booting": 10,
      "netns + CNI ADD + boot": 1503,
      "guest network": 81,
      "stdio + rootfs + crun create": 196,
      "start → exit reported": 160,
      "exit → Delete answered": 9,
      "Shutdown + containerd's delete": 92,
    });
  });

  it("leaves out phases whose lines are missing, and knows nothing of a run that is not there", () => {
    const partial = LOG.split("\n")
      .filter((l) => !l.includes('"container created"'))
      .join("\n");
    const p = runPhases(partial, "lab-0");
    expect(p["stdio + rootfs + crun create"]).toBeUndefined();
    expect(p["start → exit reported"]).toBeUndefined();
    expect(p["guest network"]).toBe(81);
    expect(runPhases(LOG, "lab-7")).toEqual({});
    // "lab-1" must not match "lab-10"-style ids, nor another run's lines.
    expect(runPhases(LOG, "lab")).toEqual({});
  });
});
