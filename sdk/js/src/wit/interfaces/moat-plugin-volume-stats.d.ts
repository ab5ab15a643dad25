declare module 'moat:plugin/volume-stats@0.1.2' {
  /**
   * Statistics of the filesystem holding `path`, a guest path inside a granted directory.
   */
  export function stat(path: string): Stats;
  export interface Stats {
    /**
     * Size of the filesystem in bytes.
     */
    totalBytes: bigint,
    /**
     * Free bytes, including those reserved for the superuser.
     */
    freeBytes: bigint,
    /**
     * Bytes available to unprivileged users.
     */
    availableBytes: bigint,
  }
  export type StatsError = StatsErrorNotGranted | StatsErrorNotFound | StatsErrorIo;
  /**
   * The path is not inside a directory granted to this plugin.
   */
  export interface StatsErrorNotGranted {
    tag: 'not-granted',
    val: string,
  }
  /**
   * The path does not exist.
   */
  export interface StatsErrorNotFound {
    tag: 'not-found',
    val: string,
  }
  /**
   * The host could not read the statistics.
   */
  export interface StatsErrorIo {
    tag: 'io',
    val: string,
  }
}
