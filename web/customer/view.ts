/** A screen of the customer page: draws itself into <main> (again on a language change). */
export interface View {
  render(): void;
  dispose?(): void;
  /** Settles once the screen shows its data (after its first load), for focus to move there. */
  ready?: Promise<void>;
}
