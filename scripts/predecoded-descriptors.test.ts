import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import {
  create,
  type DescField,
  type DescFile,
  type DescMessage,
  fromBinary,
  ScalarType,
  toBinary,
  toJson,
} from "@bufbuild/protobuf";
import { build } from "esbuild";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  decodeEmbeddedFile,
  embeddedFiles,
  messageSource,
  predecodedDescriptorsPlugin,
  predecodeModule,
} from "./predecoded-descriptors.mjs";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
// The ESM build: what esbuild bundles for our `import`s (the "import" export condition).
const wktDir = join(
  dirname(createRequire(import.meta.url).resolve("@bufbuild/protobuf/package.json")),
  "dist/esm/wkt/gen/google/protobuf",
);

function walk(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? walk(join(dir, e.name)) : [join(dir, e.name)],
  );
}

/** Every module the plugin rewrites in our bundles: api/gen and the runtime's well-known types. */
const modules = [
  ...walk(join(root, "api/gen")).filter((f) => f.endsWith("_pb.ts")),
  ...walk(wktDir).filter((f) => f.endsWith("_pb.js")),
].filter((f) => embeddedFiles(readFileSync(f, "utf8")).length > 0);

type Module = Record<string, unknown>;
const isDescFile = (v: unknown): v is DescFile =>
  typeof v === "object" && v !== null && (v as { kind?: unknown }).kind === "file";
const filesOf = (m: Module) =>
  Object.entries(m).filter((e): e is [string, DescFile] => e[0].startsWith("file_") && isDescFile(e[1]));

/**
 * A graph as plain data: every object by its own keys in order, getters read, prototypes other
 * than Object.prototype spelled out by value (fromBinary shares one per message type across files,
 * the predecoded files one per type and file: nothing in protobuf-es compares them by identity),
 * functions by name (toString and getDefaultValue called), and any other object met again by the
 * path it was first met at. Two graphs built alike give equal trees.
 */
function canonical(value: unknown): unknown {
  const seen = new Map<object, string>();
  function go(v: unknown, path: string): unknown {
    if (typeof v === "bigint") return `${v}n`;
    if (typeof v === "function") return `function ${v.name}`;
    if (typeof v !== "object" || v === null) return v;
    if (v instanceof Uint8Array) return { bytes: Array.from(v) };
    const first = seen.get(v);
    if (first !== undefined) return { ref: first };
    seen.set(v, path);
    if (Array.isArray(v)) return v.map((e, i) => go(e, `${path}[${i}]`));
    if (v instanceof Map)
      return { map: [...v].map(([k, e]) => [go(k, `${path}<key>`), go(e, `${path}<${k}>`)]) };
    const out: Record<string, unknown> = {};
    const proto = Object.getPrototypeOf(v) as object | null;
    if (proto !== null && proto !== Object.prototype) {
      out["<prototype>"] = Object.fromEntries(
        Object.entries(proto).map(([k, e]) => [k, go(e, `${path}<${k}>`)]),
      );
    }
    for (const key of Object.keys(v)) {
      const e = (v as Record<string, unknown>)[key];
      if (typeof e === "function" && (key === "toString" || key === "getDefaultValue")) {
        out[key] = go((e as () => unknown).call(v), `${path}.${key}()`);
      } else {
        out[key] = go(e, `${path}.${key}`);
      }
    }
    return out;
  }
  return go(value, "$");
}

const WRAPPED = /^google\.protobuf\.(Struct|Value|ListValue|\w+Value)$/;

function scalarSample(t: ScalarType, name: string): unknown {
  switch (t) {
    case ScalarType.STRING:
      return `s-${name}`;
    case ScalarType.BYTES:
      return new Uint8Array([1, 2, 250]);
    case ScalarType.BOOL:
      return true;
    case ScalarType.DOUBLE:
    case ScalarType.FLOAT:
      return 1.5;
    case ScalarType.INT64:
    case ScalarType.SINT64:
    case ScalarType.SFIXED64:
      return -(2n ** 40n);
    case ScalarType.UINT64:
    case ScalarType.FIXED64:
      return 2n ** 63n + 5n;
    case ScalarType.INT32:
    case ScalarType.SINT32:
    case ScalarType.SFIXED32:
      return -7;
    default:
      return 4_000_000_000;
  }
}

function mapKeySample(t: ScalarType): string {
  if (t === ScalarType.STRING) return "k";
  if (t === ScalarType.BOOL) return "true";
  return "9";
}

/** An init object with every field set (one case per oneof, messages three levels deep). */
function sample(desc: DescMessage, depth = 0): Record<string, unknown> {
  const init: Record<string, unknown> = {};
  const value = (f: DescField, kind: "scalar" | "enum" | "message", d: number): unknown => {
    if (kind === "scalar" && f.scalar !== undefined) return scalarSample(f.scalar, f.name);
    if (kind === "enum" && f.enum) return f.enum.values[f.enum.values.length - 1]?.number ?? 0;
    if (kind === "message" && f.message && d < 3 && !WRAPPED.test(f.message.typeName))
      return sample(f.message, d + 1);
    return undefined;
  };
  for (const f of desc.fields) {
    let v: unknown;
    switch (f.fieldKind) {
      case "scalar":
      case "enum":
      case "message":
        v = value(f, f.fieldKind, depth);
        break;
      case "list": {
        const e = value(f, f.listKind, depth);
        v = e === undefined ? undefined : [e, e];
        break;
      }
      case "map": {
        const e = value(f, f.mapKind, depth);
        v = e === undefined ? undefined : { [mapKeySample(f.mapKey)]: e };
        break;
      }
    }
    if (v === undefined) continue;
    if (f.oneof) {
      if (init[f.oneof.localName] === undefined) init[f.oneof.localName] = { case: f.localName, value: v };
    } else {
      init[f.localName] = v;
    }
  }
  return init;
}

function allMessages(file: DescFile): DescMessage[] {
  const out: DescMessage[] = [];
  const add = (m: DescMessage) => {
    if (m.proto.options?.mapEntry) return;
    out.push(m);
    m.nestedMessages.forEach(add);
  };
  file.messages.forEach(add);
  return out;
}

interface BundledRuntime {
  create: typeof create;
  toBinary: typeof toBinary;
  fromBinary: typeof fromBinary;
  toJson: typeof toJson;
}

describe("predecoded protobuf descriptors", () => {
  let dir: string;
  let bundleText: string;
  const original = new Map<string, Module>();
  const bundled = new Map<string, Module>();
  let runtime: BundledRuntime;

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), "predecoded-"));
    // One bundle of all modules through the plugin, with its own copy of the runtime, as in dist/.
    const entry = [
      ...modules.map((m, i) => `export * as m${i} from ${JSON.stringify(m)};`),
      'export { create, toBinary, fromBinary, toJson } from "@bufbuild/protobuf";',
    ].join("\n");
    const out = join(dir, "bundle.mjs");
    await build({
      stdin: { contents: entry, resolveDir: root, loader: "ts" },
      bundle: true,
      format: "esm",
      platform: "node",
      outfile: out,
      logLevel: "silent",
      plugins: [predecodedDescriptorsPlugin],
    });
    bundleText = readFileSync(out, "utf8");
    const b = (await import(pathToFileURL(out).href)) as Record<string, Module> & BundledRuntime;
    runtime = b;
    for (const [i, m] of modules.entries()) {
      bundled.set(m, b[`m${i}`] as Module);
      original.set(m, (await import(pathToFileURL(m).href)) as Module);
    }
  }, 60_000);
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it("covers api/gen and the well-known types, and leaves no fileDesc call", () => {
    const names = modules.map((m) => relative(root, m));
    expect(names).toContain("api/gen/beetroot/guest/v1/system_pb.ts");
    expect(names.some((n) => n.endsWith("google/protobuf/any_pb.js"))).toBe(true);
    expect(/\bfileDesc\(/.test(bundleText)).toBe(false);
  });

  it("drops descriptor.proto from a bundle that needs no descriptor types (vminitd's imports)", async () => {
    const entry = [
      'export { System } from "./api/gen/beetroot/guest/v1/system_pb.ts";',
      'export { Task } from "./api/gen/beetroot/guest/v1/task_pb.ts";',
      'export { AnySchema, timestampFromDate } from "@bufbuild/protobuf/wkt";',
    ].join("\n");
    const bundle = async (plugins: (typeof predecodedDescriptorsPlugin)[]) => {
      const r = await build({
        stdin: { contents: entry, resolveDir: root, loader: "ts" },
        bundle: true,
        format: "esm",
        platform: "node",
        write: false,
        logLevel: "silent",
        plugins,
      });
      return r.outputFiles[0]!.text;
    };
    // Without the plugin fileDesc needs FileDescriptorProtoSchema, so descriptor.proto is booted.
    expect((await bundle([])).includes('"google/protobuf/descriptor.proto"')).toBe(true);
    expect((await bundle([predecodedDescriptorsPlugin])).includes("google/protobuf/descriptor.proto")).toBe(
      false,
    );
  });

  it("builds every file exactly as fileDesc does (descriptor graph and its FileDescriptorProto)", () => {
    let files = 0;
    for (const m of modules) {
      const orig = filesOf(original.get(m)!);
      const mine = filesOf(bundled.get(m)!);
      expect(mine.map((e) => e[0])).toEqual(orig.map((e) => e[0]));
      expect(orig.length).toBeGreaterThan(0);
      for (const [i, [name, file]] of orig.entries()) {
        const other = mine[i]![1];
        expect(canonical(other.proto), `${name}.proto`).toEqual(canonical(file.proto));
        expect(canonical(other), name).toEqual(canonical(file));
        files++;
      }
    }
    expect(files).toBe(modules.length);
  });

  it("encodes and decodes a sample of every message to the same bytes and JSON", () => {
    let messages = 0;
    for (const m of modules) {
      const mine = new Map(filesOf(bundled.get(m)!));
      for (const [name, file] of filesOf(original.get(m)!)) {
        const byName = new Map(allMessages(mine.get(name)!).map((d) => [d.typeName, d]));
        for (const desc of allMessages(file)) {
          const other = byName.get(desc.typeName)!;
          const init = sample(desc);
          const bytes = toBinary(desc, create(desc, init));
          const myBytes = runtime.toBinary(other, runtime.create(other, init));
          expect(myBytes, desc.typeName).toEqual(bytes);
          if (bytes.length > 0 || desc.fields.length === 0) messages++;
          // Some samples are out of a well-known type's JSON range: then both must refuse alike.
          const json = (to: () => unknown) => {
            try {
              return { json: to() };
            } catch (err) {
              return { error: String(err) };
            }
          };
          expect(json(() => runtime.toJson(other, runtime.fromBinary(other, bytes)))).toEqual(
            json(() => toJson(desc, fromBinary(desc, bytes))),
          );
        }
      }
    }
    expect(messages).toBeGreaterThan(100);
  });

  it("keeps field presence: own properties where fromBinary sets them, defaults on the prototype", () => {
    const source = readFileSync(join(root, "api/gen/beetroot/guest/v1/system_pb.ts"), "utf8");
    const [call] = embeddedFiles(source);
    const decoded = decodeEmbeddedFile(call!.base64);
    const { declarations, expression } = messageSource(decoded, "p");
    const rebuilt = new Function(
      `const $beetrootMessage = (p, own) => Object.assign(Object.create(p), own);\n${declarations.join("\n")}\nreturn ${expression};`,
    )() as typeof decoded;
    expect(canonical(rebuilt)).toEqual(canonical(decoded));
    const gateway = rebuilt.messageType
      .find((m) => m.name === "NetworkRoute")!
      .field.find((f) => f.name === "gateway")!;
    expect(Object.hasOwn(gateway, "oneofIndex")).toBe(true);
    expect(Object.hasOwn(gateway, "defaultValue")).toBe(false);
    expect(gateway.defaultValue).toBe("");
  });

  it("refuses a fileDesc call it does not understand instead of leaving it slow", () => {
    expect(predecodeModule("export const x = 1;")).toBeUndefined();
    expect(() =>
      predecodeModule('const f = fileDesc(b64, [a]);\nconst g = fileDesc("AA==");', "x_pb.ts"),
    ).toThrow(/x_pb\.ts: 2 fileDesc\( calls but only 1/);
    const bad = join(dir, "bad_pb.ts");
    writeFileSync(bad, "export const f = fileDesc(atob(''));\n");
    return expect(
      build({
        entryPoints: [bad],
        bundle: true,
        write: false,
        logLevel: "silent",
        plugins: [predecodedDescriptorsPlugin],
      }),
    ).rejects.toThrow(/form predecoding understands/);
  });
});
