/// <reference path="./moat-plugin-types.d.ts" />
declare module 'moat:plugin/client@0.1.2' {
  export function capabilities(): ClientCapabilities;
  /**
   * Asks the client one or more questions, each under a key unique within the
   * call; the answers come back in the same order. Asking something the client
   * did not declare (see `capabilities`) ends the call with MCP error -32021.
   * The error is the client's refusal or an unreadable answer.
   */
  export function ask(questions: Array<[string, Question]>): Array<Answer>;
  export type Content = import('moat:plugin/types@0.1.2').Content;
  export type Role = import('moat:plugin/types@0.1.2').Role;
  /**
   * What the client declared it can answer.
   */
  export interface ClientCapabilities {
    elicitation: boolean,
    sampling: boolean,
    roots: boolean,
  }
  /**
   * What the user did with an elicitation.
   * # Variants
   * 
   * ## `"accept"`
   * 
   * ## `"decline"`
   * 
   * ## `"cancel"`
   */
  export type ElicitAction = 'accept' | 'decline' | 'cancel';
  export interface ElicitRequest {
    message: string,
    /**
     * A JSON Schema object whose properties are strings, numbers, integers,
     * booleans or enums.
     */
    requestedSchema: string,
  }
  export interface ElicitResponse {
    action: ElicitAction,
    /**
     * The submitted form as a JSON object, when accepted.
     */
    content?: string,
  }
  export interface SamplingMessage {
    role: Role,
    /**
     * Text, image or audio.
     */
    content: Content,
  }
  export interface SamplingRequest {
    messages: Array<SamplingMessage>,
    systemPrompt?: string,
    maxTokens: number,
    temperature?: number,
    /**
     * Model names the client may prefer, in order.
     */
    modelHints: Array<string>,
  }
  export interface SamplingResponse {
    role: Role,
    content: Content,
    model: string,
    stopReason?: string,
  }
  /**
   * A root the client exposes (a directory or project it works in).
   */
  export interface Root {
    uri: string,
    name?: string,
  }
  export type Question = QuestionElicit | QuestionSample | QuestionListRoots;
  export interface QuestionElicit {
    tag: 'elicit',
    val: ElicitRequest,
  }
  export interface QuestionSample {
    tag: 'sample',
    val: SamplingRequest,
  }
  export interface QuestionListRoots {
    tag: 'list-roots',
  }
  export type Answer = AnswerElicit | AnswerSample | AnswerRoots;
  export interface AnswerElicit {
    tag: 'elicit',
    val: ElicitResponse,
  }
  export interface AnswerSample {
    tag: 'sample',
    val: SamplingResponse,
  }
  export interface AnswerRoots {
    tag: 'roots',
    val: Array<Root>,
  }
}
