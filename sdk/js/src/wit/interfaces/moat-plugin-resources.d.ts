/// <reference path="./moat-plugin-types.d.ts" />
declare module 'moat:plugin/resources@0.1.2' {
  /**
   * Resources with fixed URIs. Called once when the plugin is loaded.
   */
  export function listResources(): Array<Resource>;
  /**
   * Resource templates. Called once when the plugin is loaded.
   */
  export function listResourceTemplates(): Array<ResourceTemplate>;
  /**
   * Reads a resource by URI (a fixed one or one matching a template).
   */
  export function readResource(uri: string): Array<ResourceContents>;
  export type Resource = import('moat:plugin/types@0.1.2').Resource;
  export type ResourceTemplate = import('moat:plugin/types@0.1.2').ResourceTemplate;
  export type ResourceContents = import('moat:plugin/types@0.1.2').ResourceContents;
  export type CallError = import('moat:plugin/types@0.1.2').CallError;
}
