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
  // body timeout would otherwise end it after five silent minutes.
  const versions = await Promise.all(
    kinds.map(async (kind) => (await raw.request<{ metadata: { resourceVersion: string } }>(HttpMethod.GET, collectionPath(kind, namespace), { query: { limit: 1 } })).metadata.resourceVersion),
  );
  const watches = kinds.map((kind, i) =>
    raw
      .watch<{ metadata?: { name?: string } }>(collectionPath(kind, namespace), { resourceVersion: versions[i], allowWatchBookmarks: true }, (event) => {
        if (event.type === 'ADDED' || event.type === 'MODIFIED' || event.type === 'DELETED') seen.push(`${event.type} ${kind.kind} ${event.object.metadata?.name}`);
      }, abort.signal)
      .then(() => {
        // The server ended the watch before we did: the window was not fully observed.
        if (!abort.signal.aborted) seen.push(`watch of ${kind.plural} ended early`);
      })
      .catch((err: unknown) => {
        if (!abort.signal.aborted) seen.push(`watch of ${kind.plural} failed: ${String(err)}`);
      }),
  );
  return {
    async stop() {
      abort.abort();
      await Promise.all(watches);
      await raw.close();
      return seen;
    },
  };
}
