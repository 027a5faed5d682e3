// Objects as the apiserver sends them. The cache keeps wire JSON (timestamps are RFC 3339
// strings) rather than client-node's model classes (which turn them into Date): deserializing
// every watch event into class instances costs CPU and memory for nothing the operator needs,
// and client-node's own ListWatch mixes both shapes. Wire<T> keeps the model's field names and
// says honestly what the values are.
import type { KubernetesObject, V1ObjectMeta } from '@kubernetes/client-node';

export type Wire<T> = T extends Date
  ? string
  : T extends readonly (infer U)[]
    ? Wire<U>[]
    : T extends object
      ? { [K in keyof T]: Wire<T[K]> }
      : T;

/** Any object with metadata, as read from the apiserver. */
export interface KubeObject {
  apiVersion?: string;
  kind?: string;
  metadata?: Wire<V1ObjectMeta>;
}

/** client-node's KubernetesObject accepted where an object is written. */
export type WritableObject = KubernetesObject | KubeObject;
