/** Public API of internal/kernel for the rest of beetroot. */
export { type KernelArtifact, KernelMissingError, kernelArtifact } from "./artifact.ts";
export { hostTscKhz, type TscRate } from "./tsc.ts";
