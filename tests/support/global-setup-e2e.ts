// End-to-end tier: the kind cluster (created or reused) with every image loaded; the product is
// installed by the tests the way a user installs it.
import type { TestProject } from 'vitest/node';
import { ensureCluster, ensureImages, helmPath, kubectlPath } from './platform.ts';

export default async function setup(project: TestProject): Promise<void> {
  const kubeconfig = ensureCluster();
  ensureImages();
  project.provide('kubeconfig', kubeconfig);
  project.provide('kubectl', kubectlPath());
  project.provide('helm', helmPath());
}

declare module 'vitest' {
  export interface ProvidedContext {
    helm: string;
  }
}
