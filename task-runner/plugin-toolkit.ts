/**
 * What a plugin's default-exported factory is given: the runner's own defineTask and zod, so a
 * plugin needs no dependencies of its own. `z` holds zod's builders for params schemas, not the
 * whole namespace: handing out the namespace as a value bundles all of zod (its ~40 locales
 * included) into every run, about 15 ms of start-up. A builder missing here is one line to add.
 */
import * as z from 'zod';
import { defineTask } from './task.ts';

const builders = {
  object: z.object,
  strictObject: z.strictObject,
  looseObject: z.looseObject,
  string: z.string,
  number: z.number,
  int: z.int,
  boolean: z.boolean,
  array: z.array,
  tuple: z.tuple,
  record: z.record,
  enum: z.enum,
  literal: z.literal,
  union: z.union,
  optional: z.optional,
  nullable: z.nullable,
  url: z.url,
  email: z.email,
  uuid: z.uuid,
  iso: z.iso,
  coerce: z.coerce,
};

export type PluginZod = Pick<typeof z, keyof typeof builders>;

export interface PluginToolkit {
  defineTask: typeof defineTask;
  z: PluginZod;
}

export const toolkit: PluginToolkit = Object.freeze({ defineTask, z: Object.freeze(builders) });
