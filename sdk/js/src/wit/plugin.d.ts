/// <reference path="./interfaces/moat-plugin-caller.d.ts" />
/// <reference path="./interfaces/moat-plugin-client.d.ts" />
/// <reference path="./interfaces/moat-plugin-log.d.ts" />
/// <reference path="./interfaces/moat-plugin-progress.d.ts" />
/// <reference path="./interfaces/moat-plugin-prompts.d.ts" />
/// <reference path="./interfaces/moat-plugin-resources.d.ts" />
/// <reference path="./interfaces/moat-plugin-tools.d.ts" />
/// <reference path="./interfaces/moat-plugin-types.d.ts" />
/// <reference path="./interfaces/moat-plugin-volume-stats.d.ts" />
declare module 'moat:plugin/plugin@0.1.2' {
  export type * as MoatPluginCaller012 from 'moat:plugin/caller@0.1.2'; // import moat:plugin/caller@0.1.2
  export type * as MoatPluginClient012 from 'moat:plugin/client@0.1.2'; // import moat:plugin/client@0.1.2
  export type * as MoatPluginLog012 from 'moat:plugin/log@0.1.2'; // import moat:plugin/log@0.1.2
  export type * as MoatPluginProgress012 from 'moat:plugin/progress@0.1.2'; // import moat:plugin/progress@0.1.2
  export type * as MoatPluginTypes012 from 'moat:plugin/types@0.1.2'; // import moat:plugin/types@0.1.2
  export type * as MoatPluginVolumeStats012 from 'moat:plugin/volume-stats@0.1.2'; // import moat:plugin/volume-stats@0.1.2
  export * as tools from 'moat:plugin/tools@0.1.2'; // export moat:plugin/tools@0.1.2
  export * as resources from 'moat:plugin/resources@0.1.2'; // export moat:plugin/resources@0.1.2
  export * as prompts from 'moat:plugin/prompts@0.1.2'; // export moat:plugin/prompts@0.1.2
}
