import { Task as TaskV2 } from "../../api/gen/containerd/task/v2/shim_pb.ts";
import { Task as TaskV3 } from "../../api/gen/containerd/task/v3/shim_pb.ts";
import type { Server } from "../ttrpc/server.ts";
import type { TaskService } from "./task-service.ts";

/**
 * The 17 RPCs as a plain handler table (the TTRPC server refuses objects with extra keys, and the
 * service object has state). v2 and v3 share every message, so one table serves both names;
 * v3's streaming Events is left out and answers Unimplemented.
 */
export function taskHandlers(svc: TaskService) {
  return {
    state: svc.state.bind(svc),
    create: svc.create.bind(svc),
    start: svc.start.bind(svc),
    delete: svc.delete.bind(svc),
    pids: svc.pids.bind(svc),
    pause: svc.pause.bind(svc),
    resume: svc.resume.bind(svc),
    checkpoint: svc.checkpoint.bind(svc),
    kill: svc.kill.bind(svc),
    exec: svc.exec.bind(svc),
    resizePty: svc.resizePty.bind(svc),
    closeIO: svc.closeIO.bind(svc),
    update: svc.update.bind(svc),
    wait: svc.wait.bind(svc),
    stats: svc.stats.bind(svc),
    connect: svc.connect.bind(svc),
    shutdown: svc.shutdown.bind(svc),
  };
}

export function registerTaskApi(server: Server, svc: TaskService): void {
  const handlers = taskHandlers(svc);
  server.register(TaskV2, handlers);
  server.register(TaskV3, handlers);
}
