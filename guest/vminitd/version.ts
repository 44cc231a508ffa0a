import pkg from "../../package.json" with { type: "json" };

/** vminitd's version: the project's (guest and host are built and shipped together). */
export const VMINITD_VERSION: string = pkg.version;
