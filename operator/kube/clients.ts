// Where the operator's API access comes from: one KubeConfig, the typed clients made from it, and
// the raw JSON client the informers, apply and leader election use.
import { existsSync } from 'node:fs';
import {
  BatchV1Api,
  CoordinationV1Api,
  CoreV1Api,
  CustomObjectsApi,
  EventsV1Api,
  KubeConfig,
  KubernetesObjectApi,
} from '@kubernetes/client-node';
import { RawApi } from './raw-api.ts';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

export interface KubeClients {
  kubeConfig: KubeConfig;
  core: CoreV1Api;
  batch: BatchV1Api;
  custom: CustomObjectsApi;
  coordination: CoordinationV1Api;
  events: EventsV1Api;
  objects: KubernetesObjectApi;
  raw: RawApi;
}

export type KubeConfigSource = 'file' | 'in-cluster' | 'default';

/**
 * An explicit kubeconfig path wins; then the pod's service account when running in a cluster;
 * then client-node's default ($KUBECONFIG, ~/.kube/config).
 */
export function loadKubeConfig(opts: { kubeconfig?: string } = {}): { kubeConfig: KubeConfig; source: KubeConfigSource } {
  const kc = new KubeConfig();
  let source: KubeConfigSource;
  try {
    if (opts.kubeconfig) {
      kc.loadFromFile(opts.kubeconfig);
      source = 'file';
    } else if (process.env.KUBERNETES_SERVICE_HOST && existsSync(SERVICE_ACCOUNT_TOKEN)) {
      kc.loadFromCluster();
      source = 'in-cluster';
    } else {
      kc.loadFromDefault();
      source = 'default';
    }
  } catch (err) {
    throw new Error(`could not load the kubeconfig${opts.kubeconfig ? ` ${opts.kubeconfig}` : ''}`, { cause: err });
  }
  if (!kc.getCurrentCluster()) throw new Error(`the kubeconfig (${source}) has no current cluster`);
  return { kubeConfig: kc, source };
}

export function createClients(kc: KubeConfig): KubeClients {
  return {
    kubeConfig: kc,
    core: kc.makeApiClient(CoreV1Api),
    batch: kc.makeApiClient(BatchV1Api),
    custom: kc.makeApiClient(CustomObjectsApi),
    coordination: kc.makeApiClient(CoordinationV1Api),
    events: kc.makeApiClient(EventsV1Api),
    objects: KubernetesObjectApi.makeApiClient(kc),
    raw: new RawApi(kc),
  };
}
