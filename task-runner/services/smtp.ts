/**
 * Sending mail through SMTP with nodemailer (imported on first use). SMTP_URL is
 * smtp://[user:pass@]host[:port] (STARTTLS when the server offers it) or smtps://… (TLS from
 * the start); `?requireTLS=true` refuses a server without STARTTLS.
 * Failures are sorted the way a queue needs them: the server is unavailable (nothing can be
 * sent now: connection refused or dropped, timeouts, 421, authentication refused), the message
 * was refused for now (other 4xx: try again later), or refused for good (5xx, or a message
 * nodemailer cannot build).
 */
import type { Transporter } from 'nodemailer';

export interface OutgoingMail {
  messageId: string;
  from: string;
  to: string | string[];
  cc?: string | string[] | undefined;
  bcc?: string | string[] | undefined;
  replyTo?: string | undefined;
  subject: string;
  text?: string | undefined;
  html?: string | undefined;
  headers?: Record<string, string> | undefined;
  /** The SMTP envelope's recipients, when not every address of to/cc/bcc (the headers stay as they are). */
  envelopeTo?: string[] | undefined;
}

/** A recipient the server refused: `error` carries its reply (responseCode). */
export interface RefusedRecipient {
  address: string;
  error: Error;
}

export type FailureKind = 'unavailable' | 'transient' | 'permanent';

export interface Mailer {
  /**
   * Resolves once the server took the message for at least one recipient; the others are in
   * `refused` (nodemailer's `rejectedErrors`). Rejects when it took it for none.
   */
  send(mail: OutgoingMail): Promise<{ accepted: number; refused: RefusedRecipient[]; response: string }>;
  close(): void;
}

export interface MailerOptions {
  /** Pooled: connections are kept open and reused; up to maxConnections at once. */
  pool: boolean;
  maxConnections: number;
  timeoutMs: number;
}

export async function openMailer(url: string, options: MailerOptions): Promise<Mailer> {
  const { default: nodemailer } = await import('nodemailer');
  const parsed = new URL(url);
  const secure = parsed.protocol === 'smtps:';
  const flag = (name: string) => parsed.searchParams.get(name) === 'true';
  const transport: Transporter = nodemailer.createTransport({
    host: parsed.hostname,
    port: parsed.port ? Number(parsed.port) : secure ? 465 : 587,
    secure,
    requireTLS: flag('requireTLS'),
    ...(parsed.username ? { auth: { user: decodeURIComponent(parsed.username), pass: decodeURIComponent(parsed.password) } } : {}),
    pool: options.pool,
    maxConnections: options.maxConnections,
    maxMessages: Infinity,
    connectionTimeout: options.timeoutMs,
    greetingTimeout: options.timeoutMs,
    socketTimeout: options.timeoutMs,
  } as Parameters<typeof nodemailer.createTransport>[0]);
  return {
    async send({ envelopeTo, ...mail }) {
      const envelope = envelopeTo ? { envelope: { from: mail.from, to: envelopeTo } } : {};
      const info = (await transport.sendMail({ ...mail, ...envelope })) as { accepted: unknown[]; response: string };
      return { accepted: info.accepted.length, refused: refusedRecipients(info), response: info.response };
    },
    close: () => transport.close(),
  };
}

/**
 * The recipients refused, each with its reply: nodemailer lists them in `rejectedErrors` both on
 * the result of a message some recipients took and on the error of one that none took.
 */
export function refusedRecipients(infoOrError: unknown): RefusedRecipient[] {
  const errors = (infoOrError as { rejectedErrors?: (Error & { recipient?: string })[] } | null)?.rejectedErrors ?? [];
  return errors.map((error) => ({ address: error.recipient ?? '', error }));
}

/** The domain of a sender (`a@x.org` or `Name <a@x.org>`): where the tasks' Message-IDs are made. */
export function senderDomain(from: string): string {
  return from.replace(/>$/, '').split('@').pop() ?? 'localhost';
}

/**
 * Whether the server refused `address` itself for good — the mailbox does not exist, is disabled,
 * the address is malformed — rather than the message, the sender or the relay (a configuration
 * to fix: 5.7.x "relay access denied" names the recipient too). With an enhanced status code
 * (RFC 3463): 5.1.x, or 5.2.1; without one: 550, 551 or 553 to that address's RCPT.
 */
export function addressRefused(err: unknown, address: string): boolean {
  const refusal = refusedRecipients(err).find((r) => r.address.toLowerCase() === address.toLowerCase());
  if (!refusal) return false;
  const { responseCode, response } = refusal.error as { responseCode?: number; response?: string };
  if (typeof responseCode !== 'number' || responseCode < 500) return false;
  const enhanced = /^\d{3}[ -](\d)\.(\d{1,3})\.(\d{1,3})\b/.exec(response ?? '');
  if (enhanced) return enhanced[1] === '5' && (enhanced[2] === '1' || (enhanced[2] === '2' && enhanced[3] === '1'));
  return responseCode === 550 || responseCode === 551 || responseCode === 553;
}

// Connection errors that leave no doubt the server never saw a message (nodemailer keeps the
// system error's code as originalCode under its own ESOCKET).
const NEVER_CONNECTED = new Set(['ECONNREFUSED', 'ENOTFOUND', 'EAI_AGAIN', 'EDNS']);

/** Whether a send failed before any connection was made: the message was certainly not offered. */
export function neverConnected(err: unknown): boolean {
  const { code, originalCode } = (err ?? {}) as { code?: string; originalCode?: string };
  return NEVER_CONNECTED.has(originalCode ?? code ?? '');
}

const UNAVAILABLE_CODES = new Set(['ECONNECTION', 'ETIMEDOUT', 'ESOCKET', 'EDNS', 'EAUTH', 'ETLS', 'ECONNREFUSED', 'ECONNRESET', 'EPROTOCOL']);

export function classifyFailure(err: unknown): FailureKind {
  const e = err as { code?: string; responseCode?: number } | null;
  const status = e?.responseCode;
  if (status === 421) return 'unavailable';
  if (typeof status === 'number' && status >= 400 && status < 500) return e?.code === 'EAUTH' ? 'unavailable' : 'transient';
  if (typeof status === 'number' && status >= 500) return e?.code === 'EAUTH' ? 'unavailable' : 'permanent';
  if (e?.code && UNAVAILABLE_CODES.has(e.code)) return 'unavailable';
  // No SMTP answer and no connection error: nodemailer refused to build the message (EENVELOPE, EMESSAGE).
  return 'permanent';
}
