declare module 'moat:plugin/log@0.1.2' {
  export function log(level: Level, message: string): void;
  /**
   * # Variants
   * 
   * ## `"debug"`
   * 
   * ## `"info"`
   * 
   * ## `"notice"`
   * 
   * ## `"warning"`
   * 
   * ## `"error"`
   */
  export type Level = 'debug' | 'info' | 'notice' | 'warning' | 'error';
}
