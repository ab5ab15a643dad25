declare module 'moat:plugin/types@0.1.2' {
  /**
   * Hints about what a tool does, passed to MCP clients as tool annotations.
   */
  export interface ToolAnnotations {
    /**
     * The tool does not modify its environment.
     */
    readOnly: boolean,
    /**
     * The tool may perform destructive updates (only meaningful when not read-only).
     */
    destructive: boolean,
    /**
     * Calling the tool twice with the same arguments has no further effect.
     */
    idempotent: boolean,
    /**
     * The tool interacts with an open world of external entities.
     */
    openWorld: boolean,
  }
  /**
   * A tool the plugin offers.
   */
  export interface Tool {
    /**
     * Unique name, 1 to 128 characters of `A-Z a-z 0-9 _ - .`.
     */
    name: string,
    /**
     * Human-readable title.
     */
    title?: string,
    /**
     * What the tool does; this text is shown to the model.
     */
    description: string,
    /**
     * JSON Schema of the arguments object, serialized as JSON.
     */
    inputSchema: string,
    /**
     * JSON Schema of the structured result, serialized as JSON, if the tool returns one.
     */
    outputSchema?: string,
    annotations: ToolAnnotations,
  }
  /**
   * The body of a resource: text or raw bytes.
   */
  export type ResourceBody = ResourceBodyText | ResourceBodyBlob;
  export interface ResourceBodyText {
    tag: 'text',
    val: string,
  }
  export interface ResourceBodyBlob {
    tag: 'blob',
    val: Uint8Array,
  }
  /**
   * The contents of one resource.
   */
  export interface ResourceContents {
    uri: string,
    mimeType?: string,
    body: ResourceBody,
  }
  /**
   * Binary media with its MIME type.
   */
  export interface Media {
    data: Uint8Array,
    mimeType: string,
  }
  /**
   * One item of a tool result or prompt message.
   */
  export type Content = ContentText | ContentImage | ContentAudio | ContentResource;
  export interface ContentText {
    tag: 'text',
    val: string,
  }
  export interface ContentImage {
    tag: 'image',
    val: Media,
  }
  export interface ContentAudio {
    tag: 'audio',
    val: Media,
  }
  export interface ContentResource {
    tag: 'resource',
    val: ResourceContents,
  }
  /**
   * The successful result of a tool call.
   */
  export interface ToolOutput {
    content: Array<Content>,
    /**
     * Structured result, a JSON object serialized as JSON, matching the output schema.
     */
    structured?: string,
  }
  /**
   * Why a call into the plugin did not produce a result.
   */
  export type CallError = CallErrorFailed | CallErrorInvalidArguments | CallErrorNotFound;
  /**
   * The tool, resource or prompt ran and failed; the message is shown to the model.
   */
  export interface CallErrorFailed {
    tag: 'failed',
    val: string,
  }
  /**
   * The arguments were rejected by the plugin; the message names the field.
   */
  export interface CallErrorInvalidArguments {
    tag: 'invalid-arguments',
    val: string,
  }
  /**
   * No tool, resource or prompt has this name or URI.
   */
  export interface CallErrorNotFound {
    tag: 'not-found',
    val: string,
  }
  /**
   * A resource with a fixed URI.
   */
  export interface Resource {
    uri: string,
    name: string,
    title?: string,
    description?: string,
    mimeType?: string,
  }
  /**
   * A family of resources described by an RFC 6570 URI template.
   */
  export interface ResourceTemplate {
    uriTemplate: string,
    name: string,
    title?: string,
    description?: string,
    mimeType?: string,
  }
  /**
   * One argument of a prompt.
   */
  export interface PromptArgument {
    name: string,
    description?: string,
    required: boolean,
  }
  /**
   * A prompt template the plugin offers.
   */
  export interface Prompt {
    name: string,
    title?: string,
    description?: string,
    arguments: Array<PromptArgument>,
  }
  /**
   * # Variants
   * 
   * ## `"user"`
   * 
   * ## `"assistant"`
   */
  export type Role = 'user' | 'assistant';
  export interface PromptMessage {
    role: Role,
    content: Content,
  }
  /**
   * A prompt filled in with its arguments.
   */
  export interface PromptResult {
    description?: string,
    messages: Array<PromptMessage>,
  }
}
