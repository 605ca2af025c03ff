// A budget of bytes shared by concurrent requests: what the HTTP listener holds in memory
// at once ([http] MaxBufferedBytes) is bounded, whatever MaxConnections x MaxBodyBytes is.

export class ByteBudget {
  private used = 0;

  constructor(readonly limit: number) {}

  /** Take `bytes` if they fit; false (and nothing taken) if they do not. */
  take(bytes: number): boolean {
    if (this.used + bytes > this.limit) return false;
    this.used += bytes;
    return true;
  }

  give(bytes: number): void {
    this.used = Math.max(0, this.used - bytes);
  }
}
