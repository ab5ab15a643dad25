declare module 'moat:plugin/caller@0.1.2' {
  /**
   * The caller of this call; none when moat serves without auth (stdio,
   * `moat call`).
   */
  export function identity(): CallerIdentity | undefined;
  export interface CallerIdentity {
    /**
     * The token's subject.
     */
    subject: string,
    /**
     * The scopes the token grants.
     */
    scopes: Array<string>,
    /**
     * The OAuth client the token was issued to, when the token says.
     */
    clientId?: string,
  }
}
