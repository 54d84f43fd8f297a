// The check CLI's last line of defence for secrets: everything it prints passes through a Redactor
// that knows the stack's secret values (private keys) and the Pulumi passphrase. Nothing it prints
// should hold one in the first place (messages are built from config keys, the node program's
// lines and ssh's errors); this makes sure a remote or a tool that echoes one cannot leak it.

/** Shorter pieces are too likely to occur in ordinary text to be masked. */
const MIN_SECRET_LENGTH = 8;
export const REDACTED = "[secret]";

export class Redactor {
  private readonly pieces = new Set<string>();

  /** A secret value; each of its lines counts too (a key's base64 lines). */
  add(secret: string | undefined): void {
    if (secret === undefined) return;
    for (const piece of [secret, secret.trim(), ...secret.split(/\r?\n/).map((l) => l.trim())]) {
      if (piece.length >= MIN_SECRET_LENGTH) this.pieces.add(piece);
    }
  }

  /** `text` with every known secret piece replaced by [secret], longest first. */
  apply(text: string): string {
    const pieces = [...this.pieces].sort((a, b) => b.length - a.length);
    return pieces.reduce((out, piece) => out.split(piece).join(REDACTED), text);
  }
}
