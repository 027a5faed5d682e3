// End-to-end tier: the kind cluster (created or reused) with every image loaded, plus the fixture
// images (e2e-images.ts); the product is installed by the tests the way a user installs it.
// At the end the cluster is deleted, unless KEEP=1 (then the next run, or `make up`, reuses it in
// seconds; a cold re-creation from the cached node image takes about 35 s).
import type { TestProject } from 'vitest/node';
import { ensureFixtureImages } from './e2e-images.ts';
import { ensureCluster, ensureImages, helmPath, kubectlPath, runScript } from './platform.ts';

export function shouldDeleteCluster(env: NodeJS.ProcessEnv): boolean {
  return env.KEEP !== '1';
}

export default async function setup(project: TestProject): Promise<() => Promise<void>> {
  const kubeconfig = ensureCluster();
  ensureImages();
  ensureFixtureImages();
  project.provide('kubeconfig', kubeconfig);
  project.provide('kubectl', kubectlPath());
  project.provide('helm', helmPath());
  return async () => {
    if (shouldDeleteCluster(process.env)) runScript('cluster-down.sh');
  };
}

declare module 'vitest' {
  export interface ProvidedContext {
    helm: string;
  }
}
