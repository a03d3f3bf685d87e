/** Who did something, as the history records it. */
export interface Actor {
  readonly id: string | null;
  readonly displayName: string | null;
}
