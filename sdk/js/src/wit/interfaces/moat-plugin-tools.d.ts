/// <reference path="./moat-plugin-types.d.ts" />
declare module 'moat:plugin/tools@0.1.2' {
  /**
   * Every tool the plugin offers. Called once when the plugin is loaded.
   */
  export function listTools(): Array<Tool>;
  /**
   * Runs a tool. `arguments` is a JSON object, already validated against the input schema.
   */
  export function callTool(name: string, arguments: string): ToolOutput;
  export type Tool = import('moat:plugin/types@0.1.2').Tool;
  export type ToolOutput = import('moat:plugin/types@0.1.2').ToolOutput;
  export type CallError = import('moat:plugin/types@0.1.2').CallError;
}
