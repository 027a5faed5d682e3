// What the host lends the kind cluster in the runner's in-cluster tests:
// - the test servers on loopback (fake-smtp, fake-ics, fake-notion, fake-openai), reached from pods
//   as in-cluster Services: a selector-less Service whose EndpointSlice points at a TCP relay on
//   the kind network's gateway address (the host, as the node and its pods see it), which forwards
//   to the server's loopback port. kube-proxy routes such a Service like any other, so a pod
//   addresses the server by its Service's DNS name.
// - a directory of the node as a PersistentVolume, so several Jobs (and the test) see the same
//   files: the file tasks' roots, and a backup one Job writes and another restores. The test seeds
//   and inspects it with `docker exec` on the node container (a kind node is a Docker container).
import { execFile } from 'node:child_process';
import { createConnection, createServer, type Server, type Socket } from 'node:net';
import { kubectl, kubectlJson, waitFor } from './kube.ts';

function docker(args: string[], input?: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = execFile('docker', args, { maxBuffer: 64 << 20, timeout: 120_000 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`docker ${args.slice(0, 3).join(' ')} … failed: ${stderr.trim() || err.message}`));
      else resolve(stdout);
    });
    if (input !== undefined) child.stdin?.end(input);
  });
}

/** The cluster's only node: with kind, its name is also its container's. */
export async function kindNode(): Promise<string> {
  const nodes = await kubectlJson<{ items: { metadata: { name: string } }[] }>(['get', 'nodes']);
  if (nodes.items.length !== 1) throw new Error(`expected the single-node kind cluster, found ${nodes.items.length} nodes`);
  return nodes.items[0]!.metadata.name;
}

/** The host's address on the node container's Docker network (its gateway). */
export async function kindGateway(node: string): Promise<string> {
  const out = await docker(['inspect', '-f', '{{range .NetworkSettings.Networks}}{{.Gateway}} {{end}}', node]);
  const gateway = out.split(/\s+/).find((a) => /^\d+\.\d+\.\d+\.\d+$/.test(a));
  if (!gateway) throw new Error(`node container ${node} has no IPv4 gateway (docker inspect: ${out.trim()})`);
  return gateway;
}

/** Runs a shell script as root inside the node container; returns its stdout. */
export function nodeShell(node: string, script: string): Promise<string> {
  return docker(['exec', '-i', node, 'sh', '-euc', script]);
}

export interface HostService {
  /** The Service's name: what pods connect to. */
  name: string;
  port: number;
  /** The relay's port on the gateway address. */
  relayPort: number;
  close(): Promise<void>;
}

/**
 * Service `name` in `ns` (port `port`) reaching 127.0.0.1:`localPort` on the host, through a
 * relay listening on `gateway`.
 */
export async function exposeHostServer(ns: string, name: string, opts: { gateway: string; port: number; localPort: number }): Promise<HostService> {
  const sockets = new Set<Socket>();
  const relay: Server = createServer((inbound) => {
    const outbound = createConnection({ host: '127.0.0.1', port: opts.localPort });
    for (const s of [inbound, outbound]) {
      sockets.add(s);
      s.on('close', () => sockets.delete(s));
    }
    inbound.on('error', () => outbound.destroy());
    outbound.on('error', () => inbound.destroy());
    inbound.pipe(outbound).pipe(inbound);
  });
  await new Promise<void>((resolve, reject) => {
    relay.once('error', reject);
    relay.listen(0, opts.gateway, () => resolve());
  });
  const relayPort = (relay.address() as { port: number }).port;
  const items = [
    { apiVersion: 'v1', kind: 'Service', metadata: { name, namespace: ns }, spec: { ports: [{ name: 'main', port: opts.port, protocol: 'TCP' }] } },
    {
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: { name: `${name}-host`, namespace: ns, labels: { 'kubernetes.io/service-name': name, 'endpointslice.kubernetes.io/managed-by': 'bgtask-tests' } },
      addressType: 'IPv4',
      ports: [{ name: 'main', port: relayPort, protocol: 'TCP' }],
      endpoints: [{ addresses: [opts.gateway], conditions: { ready: true } }],
    },
  ];
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }) });
  return {
    name,
    port: opts.port,
    relayPort,
    close: () =>
      new Promise((resolve) => {
        for (const s of sockets) s.destroy();
        relay.close(() => resolve());
      }),
  };
}

export interface NodeVolume {
  /** The PersistentVolumeClaim to mount. */
  claim: string;
  /** The directory on the node. */
  dir: string;
  /** Deletes the PersistentVolume (cluster-scoped: it outlives the namespace) and the directory. */
  remove(): Promise<void>;
}

/**
 * Directory `dir` of the node (emptied, owned by `uid`) as PersistentVolume `<ns>-<claim>`, bound
 * to claim `claim` in `ns`. Pods of any number of Jobs mount it (one node: ReadWriteOnce suffices).
 * The pods' volume is a claim, which the restricted Pod Security profile allows (a hostPath is not).
 */
export async function nodeVolume(ns: string, claim: string, opts: { node: string; dir: string; uid: number }): Promise<NodeVolume> {
  if (!/^\/[\w./-]+$/.test(opts.dir) || opts.dir.includes('..')) throw new Error(`unexpected node directory ${opts.dir}`);
  await nodeShell(opts.node, `rm -rf '${opts.dir}' && install -d -o ${opts.uid} -g ${opts.uid} -m 0750 '${opts.dir}'`);
  const pv = `${ns}-${claim}`;
  const items = [
    {
      apiVersion: 'v1',
      kind: 'PersistentVolume',
      metadata: { name: pv, labels: { 'bgtask-tests/namespace': ns } },
      spec: {
        capacity: { storage: '1Gi' },
        accessModes: ['ReadWriteOnce'],
        persistentVolumeReclaimPolicy: 'Retain',
        storageClassName: '',
        hostPath: { path: opts.dir, type: 'Directory' },
        claimRef: { namespace: ns, name: claim },
      },
    },
    {
      apiVersion: 'v1',
      kind: 'PersistentVolumeClaim',
      metadata: { name: claim, namespace: ns },
      spec: { storageClassName: '', volumeName: pv, accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '1Gi' } } },
    },
  ];
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items }) });
  await waitFor(
    `claim ${ns}/${claim} to bind`,
    async () => (await kubectlJson<{ status?: { phase?: string } }>(['-n', ns, 'get', 'pvc', claim])).status?.phase === 'Bound',
    60_000,
    500,
  );
  return {
    claim,
    dir: opts.dir,
    remove: async () => {
      await kubectl(['delete', 'pv', pv, '--ignore-not-found', '--wait=false']);
      await nodeShell(opts.node, `rm -rf '${opts.dir}'`);
    },
  };
}
