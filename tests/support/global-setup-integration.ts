// Integration tier: the kind cluster (created or reused), every image loaded into it, and host
// Postgres and Redis on free loopback ports. Addresses reach tests through provide/inject.
import type { TestProject } from 'vitest/node';
import { ensureCluster, ensureImages, kubectlPath } from './platform.ts';
import { startHostServices } from './host-services.ts';

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const kubeconfig = ensureCluster();
  ensureImages();
  const services = await startHostServices();
  project.provide('kubeconfig', kubeconfig);
  project.provide('kubectl', kubectlPath());
  project.provide('pgUrl', services.pgUrl);
  project.provide('redisUrl', services.redisUrl);
  return async () => {
    await services.stop();
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    kubeconfig: string;
    kubectl: string;
    pgUrl: string;
    redisUrl: string;
  }
}
