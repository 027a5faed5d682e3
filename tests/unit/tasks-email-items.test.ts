// Queue items and SMTP failures as email.process-queue sorts them.
import { describe, expect, it } from 'vitest';
import { addressRefused, classifyFailure, neverConnected, refusedRecipients } from '../../task-runner/services/smtp.ts';
import { handledKey, messageIdFor, parseMailItem } from '../../task-runner/tasks/email/mail-item.ts';

describe('parseMailItem', () => {
  it('accepts a well-formed item', () => {
    expect(parseMailItem(JSON.stringify({ id: 'n-1', to: ['a@x.org', 'b@x.org'], subject: 'Hi', html: '<p>hi</p>' }))).toEqual({
      item: { id: 'n-1', to: ['a@x.org', 'b@x.org'], subject: 'Hi', html: '<p>hi</p>' },
    });
  });
  it.each([
    ['not JSON', '{oops', /^not JSON: /],
    ['an id with a space (it would break the Message-ID)', JSON.stringify({ id: 'a b', to: 'a@x.org', subject: 's', text: 't' }), /^id: must be 1-200 characters/],
    ['no recipient', JSON.stringify({ id: 'a', subject: 's', text: 't' }), /^to: /],
    ['no body', JSON.stringify({ id: 'a', to: 'a@x.org', subject: 's' }), /^text: needs text or html$/],
  ])('refuses %s', (_what, raw, problem) => {
    const parsed = parseMailItem(raw);
    expect('problem' in parsed && parsed.problem).toMatch(problem);
  });
  it('keeps the recipients left to resend, and records a resend part under its own key', () => {
    const parsed = parseMailItem(JSON.stringify({ id: 'n-1', to: ['a@x.org', 'b@x.org'], subject: 'Hi', text: 't', resend: { part: 2, to: ['b@x.org'] } }));
    expect('item' in parsed && parsed.item.resend).toEqual({ part: 2, to: ['b@x.org'] });
    expect('item' in parsed && handledKey(parsed.item)).toBe('n-1#2');
    expect(handledKey({ id: 'n-1', to: 'a@x.org', subject: 'Hi', text: 't' })).toBe('n-1');
    const empty = parseMailItem(JSON.stringify({ id: 'n-1', to: 'a@x.org', subject: 'Hi', text: 't', resend: { part: 1, to: [] } }));
    expect('problem' in empty && empty.problem).toMatch(/^resend\.to: /);
  });
  it('derives the Message-ID from the id', () => {
    expect(messageIdFor('n-1', 'example.org')).toBe('<n-1@example.org>');
  });
});

describe('classifyFailure', () => {
  it.each([
    [{ code: 'ECONNECTION' }, 'unavailable'],
    [{ code: 'ETIMEDOUT' }, 'unavailable'],
    [{ code: 'EAUTH', responseCode: 535 }, 'unavailable'],
    [{ code: 'EENVELOPE', responseCode: 421 }, 'unavailable'],
    [{ code: 'EENVELOPE', responseCode: 451 }, 'transient'],
    [{ code: 'EENVELOPE', responseCode: 550 }, 'permanent'],
    [{ code: 'EMESSAGE' }, 'permanent'],
  ])('%o is %s', (err, kind) => {
    expect(classifyFailure(Object.assign(new Error('x'), err))).toBe(kind);
  });
});

describe('refusedRecipients', () => {
  it("reads nodemailer's rejectedErrors, from a result or an error", () => {
    const full = Object.assign(new Error('Recipient command failed: 452 mailbox full'), { code: 'EENVELOPE', responseCode: 452, recipient: 'b@x.org' });
    expect(refusedRecipients({ accepted: ['a@x.org'], rejected: ['b@x.org'], rejectedErrors: [full] })).toEqual([{ address: 'b@x.org', error: full }]);
    expect(refusedRecipients(Object.assign(new Error('all refused'), { rejectedErrors: [full] }))).toEqual([{ address: 'b@x.org', error: full }]);
    expect(refusedRecipients({ accepted: ['a@x.org'], rejected: [] })).toEqual([]);
  });
});

describe('addressRefused', () => {
  const refusal = (address: string, responseCode: number, response: string) =>
    Object.assign(new Error(`Can't send mail - all recipients were rejected: ${response}`), {
      code: 'EENVELOPE',
      rejectedErrors: [Object.assign(new Error(`Recipient command failed: ${response}`), { code: 'EENVELOPE', responseCode, response, recipient: address })],
    });
  it.each([
    ['no such mailbox, enhanced code 5.1.1', 550, '550 5.1.1 <bob@x.org>: Recipient address rejected: User unknown', true],
    ['mailbox disabled, 5.2.1', 550, '550 5.2.1 mailbox disabled', true],
    ['no enhanced code: 550', 550, '550 no such user here', true],
    ['no enhanced code: 553 mailbox name not allowed', 553, '553 mailbox name not allowed', true],
    ['relay access denied, 5.7.1 (a configuration to fix)', 554, '554 5.7.1 <bob@x.org>: Relay access denied', false],
    ['no enhanced code: 554 transaction failed', 554, '554 transaction failed', false],
    ['refused for now, 452', 452, '452 4.2.2 mailbox full', false],
  ])('%s → %s', (_what, code, response, expected) => {
    expect(addressRefused(refusal('Bob@x.org', code, response), 'bob@x.org')).toBe(expected);
  });
  it('is about the address asked for, not another recipient refused', () => {
    expect(addressRefused(refusal('ada@x.org', 550, '550 5.1.1 unknown'), 'bob@x.org')).toBe(false);
    expect(addressRefused(Object.assign(new Error('Mail command failed: 553 sender not owned'), { code: 'EENVELOPE', responseCode: 553 }), 'bob@x.org')).toBe(false);
  });
});

describe('neverConnected', () => {
  it('is true only for errors raised before any connection was made', () => {
    const socket = (originalCode: string) => Object.assign(new Error('connection failed'), { code: 'ESOCKET', originalCode });
    expect(neverConnected(socket('ECONNREFUSED'))).toBe(true);
    expect(neverConnected(socket('ENOTFOUND'))).toBe(true);
    expect(neverConnected(Object.assign(new Error('dns'), { code: 'EDNS' }))).toBe(true);
    // Connected, then lost: the message may have been offered.
    expect(neverConnected(socket('ECONNRESET'))).toBe(false);
    expect(neverConnected(Object.assign(new Error('timeout'), { code: 'ETIMEDOUT' }))).toBe(false);
    expect(neverConnected(undefined)).toBe(false);
  });
});
