// A message being received, kept exactly once: as slices of the socket's own chunks (no copy while reading),
// joined into one Buffer at the end. Shared by DATA (data.ts, after dot-unstuffing) and BDAT (RFC 3030, counted
// chunks, session.ts). Past the size limit it keeps counting but stores nothing, so an oversized message costs
// no memory while the client is still sending it.

export class MessageParts {
  private parts: Buffer[] = [];
  private size = 0;
  private overflowed = false;

  constructor(private readonly maxBytes: number) {}

  /** Number of message bytes received so far, also counted past the limit. */
  get bytes(): number {
    return this.size;
  }

  get tooBig(): boolean {
    return this.overflowed;
  }

  add(bytes: Buffer): void {
    this.size += bytes.length;
    if (this.size > this.maxBytes) {
      this.overflowed = true;
      this.parts = [];
      return;
    }
    if (!this.overflowed && bytes.length > 0) this.parts.push(bytes);
  }

  /** The whole message as one Buffer; nothing is kept afterwards. */
  take(): Buffer {
    const parts = this.parts;
    this.parts = [];
    if (parts.length === 1) return parts[0];
    // One copy into a single Buffer, after which the socket chunks are garbage: that is the only moment the
    // bytes exist twice.
    return Buffer.concat(parts, this.overflowed ? undefined : this.size);
  }
}
