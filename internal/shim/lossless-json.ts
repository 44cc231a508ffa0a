import { invalidArgument } from "./errors.ts";

/**
 * JSON that survives a parse → edit → serialize round trip unchanged apart from the edit: numbers
 * keep their source text (OCI specs carry uint64s such as RLIM_INFINITY 18446744073709551615, which
 * a JS number would round and crun would then refuse) and object members keep their order and
 * duplicates (a JS object moves integer-like keys first).
 */
export class JsonNumber {
  constructor(readonly text: string) {}
}

export class JsonObject {
  constructor(readonly entries: [string, JsonValue][]) {}

  get(key: string): JsonValue | undefined {
    for (let i = this.entries.length - 1; i >= 0; i--) {
      const e = this.entries[i]!;
      if (e[0] === key) return e[1];
    }
    return undefined;
  }

  /** Replaces every member named `key` (the last one wins when parsing) or appends one. */
  set(key: string, value: JsonValue): void {
    const kept = this.entries.filter((e) => e[0] !== key);
    this.entries.splice(0, this.entries.length, ...kept, [key, value]);
  }
}

export type JsonValue = null | boolean | string | JsonNumber | JsonValue[] | JsonObject;

const NUMBER = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
const STRING = /"(?:[^"\\\u0000-\u001f]|\\(?:["\\/bfnrt]|u[0-9a-fA-F]{4}))*"/y;
const MAX_DEPTH = 256;

export function parseLossless(text: string, what: string): JsonValue {
  let pos = 0;
  const fail = (msg: string): never => {
    throw invalidArgument(`${what} is not valid JSON: ${msg} at offset ${pos}`);
  };
  const ws = () => {
    while (pos < text.length && " \t\n\r".includes(text[pos]!)) pos++;
  };
  const match = (re: RegExp): string | undefined => {
    re.lastIndex = pos;
    const m = re.exec(text);
    if (!m) return undefined;
    pos += m[0].length;
    return m[0];
  };
  const string = (): string => {
    const raw = match(STRING);
    if (raw === undefined) return fail("bad string");
    return JSON.parse(raw) as string;
  };
  const value = (depth: number): JsonValue => {
    if (depth > MAX_DEPTH) fail("nested too deeply");
    ws();
    const c = text[pos];
    if (c === "{") {
      pos++;
      const entries: [string, JsonValue][] = [];
      ws();
      if (text[pos] === "}") {
        pos++;
        return new JsonObject(entries);
      }
      for (;;) {
        ws();
        const key = string();
        ws();
        if (text[pos] !== ":") fail("expected ':'");
        pos++;
        entries.push([key, value(depth + 1)]);
        ws();
        if (text[pos] === ",") {
          pos++;
          continue;
        }
        if (text[pos] === "}") {
          pos++;
          return new JsonObject(entries);
        }
        return fail("expected ',' or '}'");
      }
    }
    if (c === "[") {
      pos++;
      const items: JsonValue[] = [];
      ws();
      if (text[pos] === "]") {
        pos++;
        return items;
      }
      for (;;) {
        items.push(value(depth + 1));
        ws();
        if (text[pos] === ",") {
          pos++;
          continue;
        }
        if (text[pos] === "]") {
          pos++;
          return items;
        }
        return fail("expected ',' or ']'");
      }
    }
    if (c === '"') return string();
    for (const [word, v] of [
      ["true", true],
      ["false", false],
      ["null", null],
    ] as const) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return v;
      }
    }
    const n = match(NUMBER);
    if (n === undefined) return fail("unexpected character");
    return new JsonNumber(n);
  };
  const v = value(0);
  ws();
  if (pos !== text.length) fail("trailing data");
  return v;
}

export function serializeLossless(v: JsonValue): string {
  if (v instanceof JsonNumber) return v.text;
  if (v instanceof JsonObject)
    return `{${v.entries.map(([k, x]) => `${JSON.stringify(k)}:${serializeLossless(x)}`).join(",")}}`;
  if (Array.isArray(v)) return `[${v.map(serializeLossless).join(",")}]`;
  return JSON.stringify(v);
}
