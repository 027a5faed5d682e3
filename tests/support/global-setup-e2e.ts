// End-to-end tier: the kind cluster (created or reused) with every image loaded, plus the fixture
// images (e2e-images.ts); the product is installed by the tests the way a user installs it.
// At the end the cluster is deleted only when asked: E2E_DELETE_CLUSTER=1, or in CI unless KEEP=1
// (a developer's cluster is shared with whoever else is testing on it).
import type { TestProject } from 'vitest/node';
import { ensureFixtureImages } from './e2e-images.ts';
import { ensureCluster, ensureImages, helmPath, kubectlPath, runScript } from './platform.ts';

export function shouldDeleteCluster(env: NodeJS.ProcessEnv): boolean {
  if (env.E2E_DELETE_CLUSTER === '1') return true;
  return Boolean(env.CI) && env.KEEP !== '1';
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
