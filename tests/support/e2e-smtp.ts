// An SMTP sink inside the cluster for the e-mail tasks: a few lines of Node in the runner image
// (no mail server image here) that accept every message and print each as one JSON line, which
// the test reads back with `kubectl logs`. No TLS offered, so nodemailer sends in the clear.
import { kubectl, kubectlRaw } from './kube.ts';

export const SMTP_SINK = 'smtp-sink';
const PORT = 2525;

const SCRIPT = `
import { createServer } from 'node:net';
createServer((sock) => {
  let buf = '', inData = false, mail = { from: '', to: [], data: '' };
  const reply = (line) => sock.write(line + '\\r\\n');
  reply('220 sink ESMTP');
  sock.on('error', () => {});
  sock.on('data', (chunk) => {
    buf += chunk.toString('utf8');
    for (let i; (i = buf.indexOf('\\r\\n')) >= 0; ) {
      const line = buf.slice(0, i);
      buf = buf.slice(i + 2);
      if (inData) {
        if (line === '.') {
          inData = false;
          console.log(JSON.stringify(mail));
          mail = { from: '', to: [], data: '' };
          reply('250 OK queued');
        } else mail.data += (line.startsWith('..') ? line.slice(1) : line) + '\\n';
        continue;
      }
      const verb = line.slice(0, 4).toUpperCase();
      if (verb === 'MAIL') mail.from = line.slice(10);
      if (verb === 'RCPT') mail.to.push(line.slice(8));
      if (verb === 'DATA') { inData = true; reply('354 go ahead'); continue; }
      if (verb === 'QUIT') { reply('221 bye'); sock.end(); continue; }
      reply(verb === 'EHLO' || verb === 'HELO' ? '250 sink' : '250 OK');
    }
  });
}).listen(${PORT}, () => console.error('listening on ${PORT}'));
`;

/** The sink's Deployment and Service in `ns`, ready; and the URL runs reach it at. */
export async function startSmtpSink(ns: string, image: string): Promise<string> {
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
              image,
              imagePullPolicy: 'IfNotPresent',
              command: ['node', '--input-type=module', '--eval', SCRIPT],
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
