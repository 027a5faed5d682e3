// Counts writes from outside the operator: a watch on every kind it writes, started at each
// kind's current resourceVersion, where any ADDED, MODIFIED or DELETED event is a write.
import { HttpMethod, KubeConfig } from '@kubernetes/client-node';
import { RawApi } from '../../operator/kube/raw-api.ts';
import { collectionPath, type ResourceType } from '../../operator/kube/resources.ts';

export interface WriteWatch {
  /** Ends the watches; returns one line per write seen ("MODIFIED CronJob nightly"). */
  stop(): Promise<string[]>;
}

export async function watchWrites(kubeconfig: string, namespace: string, kinds: ResourceType[]): Promise<WriteWatch> {
  const kc = new KubeConfig();
  kc.loadFromFile(kubeconfig);
  const raw = new RawApi(kc);
  const seen: string[] = [];
  const abort = new AbortController();
  // Bookmarks (about one a minute) keep a quiet watch from looking dead to the HTTP client, whose
  // body timeout ends it after five silent minutes; Events have no watch cache, hence no bookmarks.
  const versions = await Promise.all(
    kinds.map(async (kind) => (await raw.request<{ metadata: { resourceVersion: string } }>(HttpMethod.GET, collectionPath(kind, namespace), { query: { limit: 1 } })).metadata.resourceVersion),
  );
  // A watch the client or server ends is resumed from the last resourceVersion seen, so the whole
  // window is observed; only a resume the server refuses (410: history gone) leaves a gap, and
  // that is reported as one.
  const watches = kinds.map(async (kind, i) => {
    let resourceVersion = versions[i];
    let lost = false;
    while (!abort.signal.aborted && !lost) {
      try {
        await raw.watch<{ metadata?: { name?: string; resourceVersion?: string } }>(
          collectionPath(kind, namespace),
          { resourceVersion, allowWatchBookmarks: true },
          (event) => {
            if (event.object.metadata?.resourceVersion) resourceVersion = event.object.metadata.resourceVersion;
            if (event.type === 'ADDED' || event.type === 'MODIFIED' || event.type === 'DELETED') seen.push(`${event.type} ${kind.kind} ${event.object.metadata?.name}`);
            if (event.type === 'ERROR') {
              lost = true;
              seen.push(`watch of ${kind.plural} lost its place: ${JSON.stringify(event.object)}`);
            }
          },
          abort.signal,
        );
      } catch (err) {
        if (abort.signal.aborted) return;
        if ((err as { code?: number }).code === 410) {
          seen.push(`watch of ${kind.plural} could not resume: ${String(err)}`);
          return;
        }
        await new Promise((r) => setTimeout(r, 500));
      }
    }
  });
  return {
    async stop() {
      abort.abort();
      await Promise.all(watches);
      await raw.close();
      return seen;
    },
  };
}
