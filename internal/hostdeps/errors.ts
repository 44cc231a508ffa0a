/**
 * A setup failure an operator can act on: what failed, and what to do about it. The CLI prints
 * both; nothing else in this folder throws bare strings at the user.
 */
export class SetupError extends Error {
  constructor(
    readonly what: string,
    readonly remedy: string,
  ) {
    super(`${what}\n  → ${remedy}`);
    this.name = "SetupError";
  }
}
