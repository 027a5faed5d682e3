// pre-delete hook: stops the release in the order its objects depend on each other, while its
// RBAC still exists. Helm would delete everything at once: the operator could no longer hand its
// Lease back, and the runs of the default tasks would keep the operator's run-accounting
// finalizer forever.
//   1. scale the operator to 0: a graceful stop hands the Lease back; then delete the Lease;
//   2. delete the release's BackgroundTasks and lift the finalizer from their runs (with the
//      task gone there is nothing left to count them into); the garbage collector does the rest.
// Plain Node (the runner image), no client library: the API over fetch with the pod's token.
import { readFileSync } from 'node:fs';

const { RELEASE, RELEASE_NAMESPACE, RUN_NAMESPACE, DEPLOYMENT, LEASE, KUBERNETES_SERVICE_HOST: HOST, KUBERNETES_SERVICE_PORT: PORT } = process.env;
const API = `https://${HOST.includes(':') ? `[${HOST}]` : HOST}:${PORT}`;
const TOKEN = readFileSync('/var/run/secrets/kubernetes.io/serviceaccount/token', 'utf8').trim();
const RUN_FINALIZER = 'workers.personal-assistant.io/run-accounting';
const STOP_TIMEOUT_MS = 60_000;

async function call(method, path, body, contentType = 'application/json') {
  const res = await fetch(API + path, {
    method,
    headers: { authorization: `Bearer ${TOKEN}`, ...(body ? { 'content-type': contentType } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  if (res.status === 404 && method !== 'GET') return undefined; // already gone
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${await res.text()}`);
  return res.json();
}
const selector = (s) => `labelSelector=${encodeURIComponent(s)}`;

await call('PATCH', `/apis/apps/v1/namespaces/${RELEASE_NAMESPACE}/deployments/${DEPLOYMENT}/scale`, { spec: { replicas: 0 } }, 'application/merge-patch+json');
const operatorPods = `/api/v1/namespaces/${RELEASE_NAMESPACE}/pods?${selector(`app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=operator`)}`;
const deadline = Date.now() + STOP_TIMEOUT_MS;
while ((await call('GET', operatorPods)).items.length > 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 1000));
await call('DELETE', `/apis/coordination.k8s.io/v1/namespaces/${RELEASE_NAMESPACE}/leases/${LEASE}`);
console.log(`operator stopped, lease ${LEASE} deleted`);

const tasksPath = `/apis/workers.personal-assistant.io/v1alpha1/namespaces/${RUN_NAMESPACE}/backgroundtasks`;
const releaseTasks = selector(`app.kubernetes.io/instance=${RELEASE},app.kubernetes.io/component=default-task`);
const names = (await call('GET', `${tasksPath}?${releaseTasks}`)).items.map((t) => t.metadata.name);
if (names.length > 0) {
  await call('DELETE', `${tasksPath}?${releaseTasks}`);
  const runs = (await call('GET', `/apis/batch/v1/namespaces/${RUN_NAMESPACE}/jobs?${selector(`workers.personal-assistant.io/task-name in (${names.join(',')})`)}`)).items;
  for (const job of runs.filter((j) => j.metadata.finalizers?.includes(RUN_FINALIZER))) {
    await call('PATCH', `/apis/batch/v1/namespaces/${RUN_NAMESPACE}/jobs/${job.metadata.name}`,
      { metadata: { [`$deleteFromPrimitiveList/finalizers`]: [RUN_FINALIZER] } }, 'application/strategic-merge-patch+json');
  }
  console.log(`deleted ${names.join(', ')}; released ${runs.length} run(s)`);
}
