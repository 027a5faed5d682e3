// A loopback SMTP server (smtp-server) that records what it accepted, and can refuse recipients
// with a chosen reply or answer slowly.
import { SMTPServer, type SMTPServerDataStream, type SMTPServerSession } from 'smtp-server';

export interface ReceivedMail {
  messageId: string | undefined;
  subject: string | undefined;
  from: string | undefined;
  to: string[];
  raw: string;
}

export interface SmtpBehaviour {
  /** An SMTP reply to refuse a recipient with, e.g. { code: 550, message: 'no such user' }. */
  refuseRecipient?: (address: string) => { code: number; message: string } | undefined;
  /** An SMTP reply to refuse the sender (MAIL FROM) with, e.g. { code: 553, message: 'sender not owned' }. */
  refuseSender?: (address: string) => { code: number; message: string } | undefined;
  /** Delay before the final reply to DATA. */
  dataDelayMs?: number;
}

export interface FakeSmtp {
  port: number;
  url: string;
  received: ReceivedMail[];
  behaviour: SmtpBehaviour;
  close(): Promise<void>;
}

export async function startFakeSmtp(behaviour: SmtpBehaviour = {}): Promise<FakeSmtp> {
  const received: ReceivedMail[] = [];
  const state = { behaviour };
  const server = new SMTPServer({
    disabledCommands: ['STARTTLS', 'AUTH'],
    logger: false,
    size: 10 * 1024 * 1024,
    maxClients: 200,
    onMailFrom(address, _session, callback) {
      const refusal = state.behaviour.refuseSender?.(address.address);
      if (!refusal) return callback();
      return callback(Object.assign(new Error(refusal.message), { responseCode: refusal.code }));
    },
    onRcptTo(address, _session, callback) {
      const refusal = state.behaviour.refuseRecipient?.(address.address);
      if (!refusal) return callback();
      const err = Object.assign(new Error(refusal.message), { responseCode: refusal.code });
      return callback(err);
    },
    onData(stream: SMTPServerDataStream, session: SMTPServerSession, callback) {
      const chunks: Buffer[] = [];
      stream.on('data', (c: Buffer) => chunks.push(c));
      stream.on('end', () => {
        const raw = Buffer.concat(chunks).toString('utf8');
        const head = raw.split(/\r?\n\r?\n/)[0] ?? '';
        const header = (name: string) => new RegExp(`^${name}:\\s*(.*)$`, 'im').exec(head)?.[1]?.trim();
        const finish = () => {
          received.push({
            messageId: header('Message-ID'),
            subject: header('Subject'),
            from: session.envelope.mailFrom ? session.envelope.mailFrom.address : undefined,
            to: session.envelope.rcptTo.map((r) => r.address),
            raw,
          });
          callback();
        };
        if (state.behaviour.dataDelayMs) setTimeout(finish, state.behaviour.dataDelayMs);
        else finish();
      });
    },
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.server.address() as { port: number }).port;
  return {
    port,
    url: `smtp://127.0.0.1:${port}`,
    received,
    get behaviour() {
      return state.behaviour;
    },
    set behaviour(b: SmtpBehaviour) {
      state.behaviour = b;
    },
    close: () => new Promise((resolve) => server.close(() => resolve())),
  };
}
