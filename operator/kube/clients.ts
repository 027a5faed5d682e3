// Where the operator's API access comes from: one KubeConfig, from a file, the pod's service
// account or the default places. Every request goes through the raw JSON client made from it
// (raw-api.ts): client-node's typed clients would put every API model in the bundle, about
// 11 MiB of RSS for nothing the operator calls.
import { existsSync } from 'node:fs';
import { KubeConfig } from '@kubernetes/client-node';

const SERVICE_ACCOUNT_TOKEN = '/var/run/secrets/kubernetes.io/serviceaccount/token';

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
