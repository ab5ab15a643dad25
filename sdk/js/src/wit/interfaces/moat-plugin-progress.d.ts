declare module 'moat:plugin/progress@0.1.2' {
  /**
   * `progress` rises with each report; `total` is given when known.
   */
  export function report(progress: number, total: number | undefined, message: string | undefined): void;
}
