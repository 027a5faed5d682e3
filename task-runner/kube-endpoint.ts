/**
 * Whether, and where, the runner talks to a Kubernetes API: the pod's service account in a
 * cluster, or BGTASK_KUBE_* from outside it (tests, benchmarks). Kept apart from the client so
 * that a run outside a cluster never loads node:https.
 */
import { existsSync, readFileSync } from 'node:fs';

const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

export interface KubeSettings {
  BGTASK_KUBE_API?: string | undefined;
  BGTASK_KUBE_TOKEN_FILE?: string | undefined;
  BGTASK_KUBE_CA_FILE?: string | undefined;
  KUBERNETES_SERVICE_HOST?: string | undefined;
  KUBERNETES_SERVICE_PORT?: number | undefined;
}

/** Where the API is and how to authenticate; files are read on each request (tokens rotate). */
export interface KubeEndpoint {
  server: URL;
  tokenFile: string;
  caFile: string | undefined;
  namespaceFile: string;
}

/** The API to talk to, or undefined outside a cluster with no override: then nothing is contacted. */
export function kubeEndpoint(settings: KubeSettings, serviceAccountDir = SERVICE_ACCOUNT_DIR): KubeEndpoint | undefined {
  const tokenFile = settings.BGTASK_KUBE_TOKEN_FILE ?? `${serviceAccountDir}/token`;
  const defaultCa = `${serviceAccountDir}/ca.crt`;
  const caFile = settings.BGTASK_KUBE_CA_FILE ?? (existsSync(defaultCa) ? defaultCa : undefined);
  const namespaceFile = `${serviceAccountDir}/namespace`;
  if (settings.BGTASK_KUBE_API) return { server: new URL(settings.BGTASK_KUBE_API), tokenFile, caFile, namespaceFile };
  if (settings.KUBERNETES_SERVICE_HOST && existsSync(tokenFile)) {
    const host = settings.KUBERNETES_SERVICE_HOST.includes(':') ? `[${settings.KUBERNETES_SERVICE_HOST}]` : settings.KUBERNETES_SERVICE_HOST;
    return { server: new URL(`https://${host}:${settings.KUBERNETES_SERVICE_PORT ?? 443}`), tokenFile, caFile, namespaceFile };
  }
  return undefined;
}

/** The pod's own namespace from its service account, if mounted. */
export function serviceAccountNamespace(endpoint: KubeEndpoint): string | undefined {
  return existsSync(endpoint.namespaceFile) ? readFileSync(endpoint.namespaceFile, 'utf8').trim() : undefined;
}
