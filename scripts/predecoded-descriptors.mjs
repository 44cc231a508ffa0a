// Build-time decoding of the protobuf descriptors that protoc-gen-es embeds in generated code.
//
// Every `*_pb` module (ours in api/gen, and @bufbuild/protobuf's own well-known types) starts with
// `fileDesc("<base64 FileDescriptorProto>", [deps])`. At run time that boots descriptor.proto
// (a registry of ~30 messages), decodes the base64 with `fromBinary`, restores the JSON names
// and builds the file's registry. Under the guest's JIT-less Bun on TCG the first three were the
// largest item of vminitd's start-up (docs/boot-time.md). This esbuild plugin does the decoding
// while bundling: each `fileDesc(...)` call becomes the same FileDescriptorProto as an object
// literal (own fields and prototype defaults exactly as `fromBinary` leaves them), handed to the
// runtime's public `createFileRegistry` the way `fileDesc` hands it. Nothing then needs
// descriptor.proto, and esbuild leaves it out of the bundle — unless the bundle wraps the runtime in
// lazy `__esm` initialisers (a dynamic `import()` does that to everything the imported module
// reaches), which run every module of @bufbuild/protobuf's indexes, descriptor.proto's boot included.
// predecoded-descriptors.test.ts proves the result equal to `fileDesc`'s.
import { readFile } from "node:fs/promises";
import { fromBinary } from "@bufbuild/protobuf";
import { protoCamelCase } from "@bufbuild/protobuf/reflect";
import { base64Decode } from "@bufbuild/protobuf/wire";
import { FileDescriptorProtoSchema } from "@bufbuild/protobuf/wkt";

/**
 * `fileDesc("<base64>")` or `fileDesc("<base64>", [a, b])` as protoc-gen-es 2.x writes it, also
 * when a formatter has spread it over lines (with trailing commas).
 */
const FILE_DESC_CALL = /\bfileDesc\(\s*"([A-Za-z0-9+/]*={0,2})"\s*(?:,\s*(\[[\w$,\s]*\])\s*)?,?\s*\)/g;
/** Any call of it, also the CommonJS build's `(0, file_js_1.fileDesc)(...)`. */
const ANY_FILE_DESC_CALL = /\bfileDesc\)?\(/g;

/** Names the generated code gets; `$` keeps them clear of protoc-gen-es's identifiers. */
const HYDRATE = "$beetrootHydrateFile";
const MESSAGE = "$beetrootMessage";
const CREATE_FILE_REGISTRY = "$beetrootCreateFileRegistry";
const PROTOTYPE = "$beetrootPrototype";

/** The `fileDesc(...)` calls of a generated module, in order. */
export function embeddedFiles(source) {
  return [...source.matchAll(FILE_DESC_CALL)].map((m) => ({ base64: m[1], imports: m[2] }));
}

/**
 * What `fileDesc` computes before `createFileRegistry`, but for `dependency`: the decoded
 * FileDescriptorProto with the JSON names protoc-gen-es leaves out restored (as its
 * `restoreJsonNames` does: only where the field has none of its own).
 */
export function decodeEmbeddedFile(base64) {
  const root = fromBinary(FileDescriptorProtoSchema, base64Decode(base64));
  root.messageType.forEach(restoreJsonNames);
  return root;
}

function restoreJsonNames(message) {
  for (const field of message.field) {
    if (!(Object.hasOwn(field, "jsonName") && field.jsonName !== undefined)) {
      field.jsonName = protoCamelCase(field.name);
    }
  }
  message.nestedType.forEach(restoreJsonNames);
}

/**
 * JavaScript source that rebuilds `root` (a message tree as `fromBinary` makes it): every message
 * is `Object.assign(Object.create(<its prototype of defaults>), <its own properties in order>)`,
 * so presence (own property or not) stays what the runtime's `isFieldSet` relies on. Returns the
 * prototype declarations (one per distinct prototype) and the expression.
 */
export function messageSource(root, prefix = PROTOTYPE) {
  const prototypes = new Map();
  const declarations = [];

  function prototypeName(proto) {
    let name = prototypes.get(proto);
    if (name === undefined) {
      name = `${prefix}${prototypes.size}`;
      prototypes.set(proto, name);
      const fields = Object.keys(proto).map(
        (k) => `${JSON.stringify(k)}: ${value(proto[k], `${k} (prototype)`)}`,
      );
      declarations.push(`const ${name} = { ${fields.join(", ")} };`);
    }
    return name;
  }

  function value(v, where) {
    switch (typeof v) {
      case "string":
      case "boolean":
        return JSON.stringify(v);
      case "number":
        if (Object.is(v, -0)) return "-0";
        if (Number.isNaN(v)) return "NaN";
        if (!Number.isFinite(v)) return v > 0 ? "Infinity" : "-Infinity";
        return String(v);
      case "bigint":
        return `${v}n`;
      case "undefined":
        return "undefined";
      case "object":
        if (v === null) return "null";
        if (Array.isArray(v)) return `[${v.map((e, i) => value(e, `${where}[${i}]`)).join(", ")}]`;
        if (v instanceof Uint8Array) return `new Uint8Array([${Array.from(v).join(", ")}])`;
        return object(v, where);
      default:
        throw new Error(`predecoded descriptors: cannot write ${typeof v} at ${where}`);
    }
  }

  function object(o, where) {
    for (const key of Reflect.ownKeys(o)) {
      const d = Object.getOwnPropertyDescriptor(o, key);
      if (typeof key !== "string" || !d?.enumerable || !("value" in d)) {
        throw new Error(
          `predecoded descriptors: ${where} has a property ${String(key)} that is not plain data`,
        );
      }
    }
    const own = Object.keys(o).map((k) => `${JSON.stringify(k)}: ${value(o[k], `${where}.${k}`)}`);
    const proto = Object.getPrototypeOf(o);
    if (proto === Object.prototype) return `{ ${own.join(", ")} }`;
    if (proto === null || Object.getPrototypeOf(proto) !== Object.prototype) {
      throw new Error(`predecoded descriptors: ${where} has an unexpected prototype chain`);
    }
    return `${MESSAGE}(${prototypeName(proto)}, { ${own.join(", ")} })`;
  }

  const expression = value(root, "file");
  return { declarations, expression };
}

/**
 * The helpers every rewritten module gets. `$beetrootHydrateFile` is the tail of protobuf-es's
 * `fileDesc` (codegenv2/file.js) verbatim: dependencies named by the imported files, the
 * registry resolving them, the file looked up by name.
 */
function helperSource() {
  return [
    `import { createFileRegistry as ${CREATE_FILE_REGISTRY} } from "@bufbuild/protobuf";`,
    `function ${MESSAGE}(prototype, own) { return Object.assign(Object.create(prototype), own); }`,
    `function ${HYDRATE}(root, imports) {`,
    "  root.dependency = imports?.map((f) => f.proto.name) ?? [];",
    `  return ${CREATE_FILE_REGISTRY}(root, (name) => imports?.find((f) => f.proto.name === name)).getFile(root.name);`,
    "}",
  ].join("\n");
}

/**
 * Rewrites a generated module's `fileDesc(...)` calls; undefined when it has none. Throws when a
 * call is not in the form this rewrite understands, so a new protoc-gen-es layout fails the build
 * instead of silently keeping the slow path.
 */
export function predecodeModule(source, path = "<module>") {
  // `import { fileDesc }` has no parenthesis: every match here is a call.
  const all = source.match(ANY_FILE_DESC_CALL)?.length ?? 0;
  if (all === 0) return undefined;
  const understood = embeddedFiles(source).length;
  if (understood !== all) {
    throw new Error(
      `${path}: ${all} fileDesc( calls but only ${understood} in the form predecoding understands`,
    );
  }
  const declarations = [];
  let index = 0;
  const body = source.replace(FILE_DESC_CALL, (_match, base64, imports) => {
    const { declarations: decl, expression } = messageSource(
      decodeEmbeddedFile(base64),
      `${PROTOTYPE}${index++}_`,
    );
    declarations.push(...decl);
    return `${HYDRATE}(${expression}${imports ? `, ${imports}` : ""})`;
  });
  return `${helperSource()}\n${declarations.join("\n")}\n${body}`;
}

/** esbuild plugin: generated protobuf modules are bundled with their descriptors decoded. */
export const predecodedDescriptorsPlugin = {
  name: "beetroot-predecoded-descriptors",
  setup(build) {
    build.onLoad({ filter: /_pb\.(ts|js)$/ }, async (args) => {
      const source = await readFile(args.path, "utf8");
      const contents = predecodeModule(source, args.path);
      if (contents === undefined) return undefined;
      return { contents, loader: args.path.endsWith(".ts") ? "ts" : "js" };
    });
  },
};
