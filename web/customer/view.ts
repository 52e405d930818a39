/** A screen of the customer page: draws itself into <main> (again on a language change). */
export interface View {
  render(): void;
  dispose?(): void;
}
