/**
 * An e-mail as producers put it on the queue: a JSON object with a unique `id`, which becomes
 * the Message-ID (so a message delivered twice is recognisable as the same one) and the
 * idempotency key of the queue.
 */
import * as z from 'zod';

const addresses = z.union([z.string().min(3), z.array(z.string().min(3)).min(1)]);

export const mailItemSchema = z
  .object({
    id: z.string().regex(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,199}$/, 'must be 1-200 characters of letters, digits, . _ : -'),
    to: addresses,
    cc: addresses.optional(),
    bcc: addresses.optional(),
    from: z.string().min(3).optional(),
    replyTo: z.string().min(3).optional(),
    subject: z.string().max(998),
    text: z.string().optional(),
    html: z.string().optional(),
    headers: z.record(z.string(), z.string()).optional(),
    // Set by email.process-queue, never by producers: the recipients a server refused while it took
    // the message for the others, as an item of their own. The same message (headers, Message-ID)
    // goes to these envelope addresses only; `part` numbers such items of one id.
    resend: z.strictObject({ part: z.int().min(1), to: z.array(z.string().min(3)).min(1) }).optional(),
  })
  .refine((m) => m.text !== undefined || m.html !== undefined, { message: 'needs text or html', path: ['text'] });

export type MailItem = z.output<typeof mailItemSchema>;

/** The item, or why it can never be sent (not JSON, or not a mail item). */
export function parseMailItem(raw: string): { item: MailItem } | { problem: string } {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch (err) {
    return { problem: `not JSON: ${(err as Error).message}` };
  }
  const result = mailItemSchema.safeParse(json);
  if (!result.success) return { problem: result.error.issues.map((i) => `${i.path.join('.') || '(item)'}: ${i.message}`).join('; ') };
  return { item: result.data };
}

/** The queue's idempotency key: the id, or for a resend part the id and its part. */
export function handledKey(item: MailItem): string {
  return item.resend ? `${item.id}#${item.resend.part}` : item.id;
}

export function messageIdFor(id: string, domain: string): string {
  return `<${id}@${domain}>`;
}
