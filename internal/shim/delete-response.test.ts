import { create, fromBinary, toBinary } from "@bufbuild/protobuf";
import { timestampFromDate } from "@bufbuild/protobuf/wkt";
import { describe, expect, it } from "vitest";
import { DeleteResponseSchema } from "../../api/gen/containerd/task/v2/shim_pb.ts";
import { encodeDeleteResponse } from "./delete-response.ts";

describe("encodeDeleteResponse", () => {
  const cases = [
    { pid: 0, exitStatus: 137, exitedAt: new Date("2026-11-24T23:59:58.123Z") },
    { pid: 4242, exitStatus: 0, exitedAt: new Date("2026-11-24T23:59:58Z") },
    { pid: 1, exitStatus: 255, exitedAt: new Date(0) },
    { pid: 2 ** 31, exitStatus: 2 ** 32 - 1, exitedAt: new Date(1) },
  ];

  it("writes the bytes toBinary writes for the generated schema", () => {
    for (const c of cases) {
      const want = toBinary(
        DeleteResponseSchema,
        create(DeleteResponseSchema, {
          pid: c.pid,
          exitStatus: c.exitStatus,
          exitedAt: timestampFromDate(c.exitedAt),
        }),
      );
      expect(Buffer.from(encodeDeleteResponse(c)).toString("hex")).toBe(Buffer.from(want).toString("hex"));
    }
  });

  it("golden bytes: exit 137 at 2026-11-24T23:59:58.123Z, as containerd decodes them", () => {
    const bytes = encodeDeleteResponse(cases[0] as (typeof cases)[0]);
    expect(Buffer.from(bytes).toString("hex")).toBe("1089011a0b08fec998d80610c0a9d33a");
    const back = fromBinary(DeleteResponseSchema, bytes);
    expect(back.exitStatus).toBe(137);
    expect(Number(back.exitedAt?.seconds)).toBe(Date.parse("2026-11-24T23:59:58Z") / 1000);
    expect(back.exitedAt?.nanos).toBe(123_000_000);
  });
});
