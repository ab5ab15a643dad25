/// <reference path="./moat-plugin-types.d.ts" />
declare module 'moat:plugin/prompts@0.1.2' {
  /**
   * Every prompt the plugin offers. Called once when the plugin is loaded.
   */
  export function listPrompts(): Array<Prompt>;
  /**
   * Fills in a prompt with its arguments.
   */
  export function getPrompt(name: string, arguments: Array<[string, string]>): PromptResult;
  export type Prompt = import('moat:plugin/types@0.1.2').Prompt;
  export type PromptResult = import('moat:plugin/types@0.1.2').PromptResult;
  export type CallError = import('moat:plugin/types@0.1.2').CallError;
}
