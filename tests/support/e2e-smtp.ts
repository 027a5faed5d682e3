// An SMTP server inside the cluster for the e-mail tasks: smtp-server (tests/fixtures/smtp-sink),
// baked into the fixture runner image, accepting every message and printing each as one JSON line,
// which the test reads back with `kubectl logs`. No TLS offered, so nodemailer sends in the clear.
import { kubectl, kubectlRaw } from './kube.ts';
import { FIXTURE_TAG, SMTP_SINK_PROGRAM } from './e2e-images.ts';

export const SMTP_SINK = 'smtp-sink';
const PORT = 2525;
const IMAGE = `bgtask.local/task-runner:${FIXTURE_TAG}`;

/** The sink's Deployment and Service in `ns`, ready; and the URL runs reach it at. */
export async function startSmtpSink(ns: string): Promise<string> {
  const labels = { 'app.kubernetes.io/name': SMTP_SINK };
  const objects = [
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: { name: SMTP_SINK, namespace: ns, labels },
      spec: {
        selector: { matchLabels: labels },
        template: {
          metadata: { labels },
          spec: {
            automountServiceAccountToken: false,
            securityContext: { runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } },
            containers: [{
              name: 'sink',
              image: IMAGE,
              imagePullPolicy: 'IfNotPresent',
              command: ['node', SMTP_SINK_PROGRAM],
              env: [{ name: 'SMTP_PORT', value: String(PORT) }],
              ports: [{ containerPort: PORT }],
              readinessProbe: { tcpSocket: { port: PORT }, periodSeconds: 1 },
              securityContext: { allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } },
            }],
          },
        },
      },
    },
    { apiVersion: 'v1', kind: 'Service', metadata: { name: SMTP_SINK, namespace: ns }, spec: { selector: labels, ports: [{ port: PORT }] } },
  ];
  await kubectl(['apply', '-f', '-'], { input: JSON.stringify({ apiVersion: 'v1', kind: 'List', items: objects }) });
  await kubectl(['-n', ns, 'rollout', 'status', `deployment/${SMTP_SINK}`, '--timeout=120s'], { timeoutMs: 130_000 });
  return `smtp://${SMTP_SINK}:${PORT}`;
}

export interface SunkMail { from: string; to: string[]; data: string }

/** Every message the sink has accepted, in order. */
export async function sunkMail(ns: string): Promise<SunkMail[]> {
  const r = await kubectlRaw(['-n', ns, 'logs', `deployment/${SMTP_SINK}`]);
  return r.stdout.split('\n').filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as SunkMail);
}
