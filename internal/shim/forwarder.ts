import { Events } from "../../api/gen/containerd/services/events/ttrpc/v1/events_pb.ts";
import type { Envelope } from "../../api/gen/containerd/types/event_pb.ts";
import { Client } from "../ttrpc/client.ts";
import { Code } from "../ttrpc/codes.ts";
import { TtrpcError } from "../ttrpc/errors.ts";
import type { EventForwarder } from "./events.ts";

const FORWARD_TIMEOUT_MS = 5_000;

/**
 * Events/Forward on containerd's TTRPC socket (env TTRPC_ADDRESS). The connection is made lazily
 * and dropped on any failure, so the publisher's next retry dials again — containerd may have
 * restarted in between.
 */
export class TtrpcEventForwarder implements EventForwarder {
  private client: Promise<Client> | undefined;
  private closed = false;

  constructor(private readonly address: string) {}

  private path(): string {
    return this.address.startsWith("unix://") ? this.address.slice("unix://".length) : this.address;
  }

  async forward(envelope: Envelope): Promise<void> {
    if (this.closed) throw new TtrpcError(Code.Unavailable, "event forwarder closed");
    if (this.address === "") throw new TtrpcError(Code.FailedPrecondition, "TTRPC_ADDRESS is not set");
    this.client ??= Client.connect(this.path());
    const pending = this.client;
    try {
      const client = await pending;
      await client.service(Events).forward({ envelope }, { timeoutMs: FORWARD_TIMEOUT_MS });
    } catch (err) {
      if (this.client === pending) this.client = undefined;
      void pending.then((c) => c.close()).catch(() => {});
      throw err;
    }
  }

  close(): void {
    this.closed = true;
    void this.client?.then((c) => c.close()).catch(() => {});
    this.client = undefined;
  }
}
