/**
 * The shim's command line, parsed the way Go's `flag` package does it, because that is what
 * containerd speaks: single-dash long flags (`-namespace NS`), `-flag=value`, boolean flags that take
 * no value (`-debug`, or `-debug=false`), parsing stops at the first non-flag argument (the action)
 * or at `--`. Generic CLI parsers treat `-namespace` as seven short flags, hence this hand parser.
 */

/** The binary these flags are for (its name in messages when argv[0] says nothing). */
export const SHIM_BINARY_NAME = "containerd-shim-beetroot-v1";

export type ShimAction = "start" | "delete" | "serve";

export interface ShimFlags {
  readonly namespace: string;
  readonly address: string;
  readonly publishBinary: string;
  readonly id: string;
  readonly bundle: string;
  /** Path of the socket the long-lived server serves (set by `start` for the server it spawns). */
  readonly socket: string;
  readonly debugSocket: string;
  readonly debug: boolean;
  readonly version: boolean;
  readonly info: boolean;
  /** `start`, `delete`, or `serve` when no action was given (the long-lived server). */
  readonly action: ShimAction;
  /** Positional arguments after the action. */
  readonly rest: readonly string[];
}

export class FlagError extends Error {
  override readonly name = "FlagError";
}

const stringFlags = {
  namespace: "namespace",
  address: "address",
  "publish-binary": "publishBinary",
  id: "id",
  bundle: "bundle",
  socket: "socket",
  "debug-socket": "debugSocket",
} as const;

const boolFlags = { debug: "debug", v: "version", version: "version", info: "info" } as const;

type StringKey = (typeof stringFlags)[keyof typeof stringFlags];
type BoolKey = (typeof boolFlags)[keyof typeof boolFlags];

function parseGoBool(name: string, value: string): boolean {
  // strconv.ParseBool's accepted spellings.
  if (["1", "t", "T", "true", "TRUE", "True"].includes(value)) return true;
  if (["0", "f", "F", "false", "FALSE", "False"].includes(value)) return false;
  throw new FlagError(`invalid boolean value "${value}" for -${name}`);
}

export function parseShimFlags(argv: readonly string[]): ShimFlags {
  const strings: Record<StringKey, string> = {
    namespace: "",
    address: "",
    publishBinary: "",
    id: "",
    bundle: "",
    socket: "",
    debugSocket: "",
  };
  const bools: Record<BoolKey, boolean> = { debug: false, version: false, info: false };

  let i = 0;
  for (; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      i++;
      break;
    }
    if (arg.length < 2 || !arg.startsWith("-")) break;
    const body = arg.startsWith("--") ? arg.slice(2) : arg.slice(1);
    if (body === "" || body.startsWith("-") || body.startsWith("=")) {
      throw new FlagError(`bad flag syntax: ${arg}`);
    }
    const eq = body.indexOf("=");
    const name = eq === -1 ? body : body.slice(0, eq);
    const inline = eq === -1 ? undefined : body.slice(eq + 1);

    if (Object.hasOwn(boolFlags, name)) {
      const key = boolFlags[name as keyof typeof boolFlags];
      bools[key] = inline === undefined ? true : parseGoBool(name, inline);
      continue;
    }
    if (Object.hasOwn(stringFlags, name)) {
      const key = stringFlags[name as keyof typeof stringFlags];
      if (inline !== undefined) {
        strings[key] = inline;
        continue;
      }
      const value = argv[i + 1];
      if (value === undefined) throw new FlagError(`flag needs an argument: -${name}`);
      strings[key] = value;
      i++;
      continue;
    }
    throw new FlagError(`flag provided but not defined: -${name}`);
  }

  const positional = argv.slice(i);
  const first = positional[0];
  let action: ShimAction;
  if (first === undefined) action = "serve";
  else if (first === "start" || first === "delete") action = first;
  else throw new FlagError(`unknown action "${first}" (expected start or delete)`);

  return { ...strings, ...bools, action, rest: positional.slice(1) };
}

/** The argv the long-lived server is started with: everything `start` got, minus the action. */
export function serveArgs(flags: ShimFlags, socketPath: string): string[] {
  const args = [
    "-namespace",
    flags.namespace,
    "-address",
    flags.address,
    "-publish-binary",
    flags.publishBinary,
    "-id",
    flags.id,
    "-socket",
    socketPath,
  ];
  if (flags.bundle !== "") args.push("-bundle", flags.bundle);
  if (flags.debug) args.push("-debug");
  return args;
}
