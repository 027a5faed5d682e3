// Queue items and SMTP failures as email.process-queue sorts them.
import { describe, expect, it } from 'vitest';
import { classifyFailure } from '../../task-runner/services/smtp.ts';
import { messageIdFor, parseMailItem } from '../../task-runner/tasks/email/mail-item.ts';

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
