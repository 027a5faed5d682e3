// Handing the fields a POST created (an Update entry of the operator's field manager) to its
// Apply entry, and the marker the informer cache keeps in place of managedFields.
import { describe, expect, it } from 'vitest';
import { keepOwnershipMarks, ownsByUpdate, templateEditedByOthers, unionFieldsV1, upgradedManagedFields, type ManagedFieldsEntry } from '../../operator/kube/field-ownership.ts';
import { compact } from '../../operator/kube/transforms.ts';
import type { KubeObject } from '../../operator/kube/types.ts';

const ME = 'bgtask-operator';
const entry = (manager: string, operation: string, fieldsV1: Record<string, unknown>, extra: Partial<ManagedFieldsEntry> = {}): ManagedFieldsEntry => ({
  manager,
  operation,
  apiVersion: 'batch/v1',
  time: '2026-11-28T10:00:00Z',
  fieldsType: 'FieldsV1',
  fieldsV1,
  ...extra,
});

describe('unionFieldsV1', () => {
  it('merges nested field sets, keeping every leaf of both', () => {
    const a = { 'f:metadata': { 'f:labels': { '.': {}, 'f:a': {} } }, 'f:spec': { 'f:schedule': {} } };
    const b = { 'f:metadata': { 'f:labels': { 'f:b': {} }, 'f:annotations': { 'f:x': {} } }, 'f:spec': { 'f:jobTemplate': { 'k:{"name":"c"}': { '.': {} } } } };
    expect(unionFieldsV1(a, b)).toEqual({
      'f:metadata': { 'f:labels': { '.': {}, 'f:a': {}, 'f:b': {} }, 'f:annotations': { 'f:x': {} } },
      'f:spec': { 'f:schedule': {}, 'f:jobTemplate': { 'k:{"name":"c"}': { '.': {} } } },
    });
    expect(a).toEqual({ 'f:metadata': { 'f:labels': { '.': {}, 'f:a': {} } }, 'f:spec': { 'f:schedule': {} } }); // inputs untouched
  });
});

describe('upgradedManagedFields', () => {
  it('turns the Update entry into an Apply entry in place, leaving the other managers alone', () => {
    const others = entry('kube-controller-manager', 'Update', { 'f:status': {} }, { subresource: 'status' });
    const mine = entry(ME, 'Update', { 'f:spec': { 'f:schedule': {} } });
    expect(upgradedManagedFields([mine, others], ME)).toEqual([{ ...mine, operation: 'Apply' }, others]);
  });

  it('folds the Update entry into an existing Apply entry', () => {
    const apply = entry(ME, 'Apply', { 'f:spec': { 'f:schedule': {} } });
    const update = entry(ME, 'Update', { 'f:spec': { 'f:suspend': {} } });
    expect(upgradedManagedFields([apply, update], ME)).toEqual([{ ...apply, fieldsV1: { 'f:spec': { 'f:schedule': {}, 'f:suspend': {} } } }]);
  });

  it('has nothing to do without an Update entry of ours on the object itself', () => {
    expect(upgradedManagedFields([entry(ME, 'Apply', {}), entry('kubectl-edit', 'Update', {})], ME)).toBeUndefined();
    expect(upgradedManagedFields([entry(ME, 'Update', { 'f:status': {} }, { subresource: 'status' })], ME)).toBeUndefined();
  });
});

const object = (managedFields: ManagedFieldsEntry[]): KubeObject => ({ apiVersion: 'batch/v1', kind: 'CronJob', metadata: { name: 'x', namespace: 'ns', managedFields } as KubeObject['metadata'] });
const at = (time: string) => ({ time });
const TEMPLATE = { 'f:spec': { 'f:jobTemplate': { 'f:spec': { 'f:template': {} } } } };

describe('templateEditedByOthers', () => {
  it('sees a job template written by another manager after our last write', () => {
    const ours = entry(ME, 'Apply', { 'f:spec': {} }, at('2026-11-28T10:00:00Z'));
    expect(templateEditedByOthers(object([ours, entry('kubectl-edit', 'Update', TEMPLATE, at('2026-11-28T10:05:00Z'))]), ME)).toBe(true);
    // Our POST's Update entry counts as our write too, and the latest of ours is the one compared.
    const posted = entry(ME, 'Update', { 'f:spec': {} }, at('2026-11-28T09:00:00Z'));
    expect(templateEditedByOthers(object([posted, entry('kubectl-patch', 'Update', TEMPLATE, at('2026-11-28T09:30:00Z'))]), ME)).toBe(true);
    expect(templateEditedByOthers(object([posted, ours, entry('kubectl-patch', 'Update', TEMPLATE, at('2026-11-28T09:30:00Z'))]), ME)).toBe(false);
  });

  it('ignores writes before ours or in the same second, status, metadata and other spec writes, and our own entries', () => {
    const ours = entry(ME, 'Apply', { 'f:spec': {} }, at('2026-11-28T10:00:00Z'));
    expect(templateEditedByOthers(object([ours, entry('kubectl-edit', 'Update', TEMPLATE, at('2026-11-28T09:59:59Z'))]), ME)).toBe(false);
    expect(templateEditedByOthers(object([ours, entry('kubectl-edit', 'Update', TEMPLATE, at('2026-11-28T10:00:00Z'))]), ME)).toBe(false);
    expect(templateEditedByOthers(object([ours, entry('kube-controller-manager', 'Update', { 'f:status': {} }, { ...at('2026-11-28T11:00:00Z'), subresource: 'status' })]), ME)).toBe(false);
    expect(templateEditedByOthers(object([ours, entry('kubectl-label', 'Update', { 'f:metadata': { 'f:labels': {} } }, at('2026-11-28T11:00:00Z'))]), ME)).toBe(false);
    expect(templateEditedByOthers(object([ours, entry(ME, 'Update', TEMPLATE, at('2026-11-28T11:00:00Z'))]), ME)).toBe(false);
    // The rest of the spec is in the cache, compared there: only the template needs the times.
    expect(templateEditedByOthers(object([ours, entry('kubectl-patch', 'Update', { 'f:spec': { 'f:suspend': {} } }, at('2026-11-28T11:00:00Z'))]), ME)).toBe(false);
    expect(templateEditedByOthers(object([]), ME)).toBe(false);
  });

  it('sees any job template write when we never wrote the object', () => {
    expect(templateEditedByOthers(object([entry('kubectl-create', 'Update', TEMPLATE)]), ME)).toBe(true);
  });
});

describe('keepOwnershipMarks', () => {
  const transform = keepOwnershipMarks(ME, compact);

  it('leaves one shared marker where our Update entry was, and nothing where it was not', () => {
    const posted = transform(object([entry(ME, 'Update', { 'f:spec': {} }), entry('kube-controller-manager', 'Update', {}, { subresource: 'status' })]));
    const other = transform(object([entry(ME, 'Update', { 'f:spec': {} })]));
    expect(ownsByUpdate(posted, ME)).toBe(true);
    expect((posted.metadata as { managedFields?: unknown }).managedFields).toEqual([{ manager: ME, operation: 'Update' }]);
    expect((posted.metadata as { managedFields?: unknown }).managedFields).toBe((other.metadata as { managedFields?: unknown }).managedFields);
    const applied = transform(object([entry(ME, 'Apply', { 'f:spec': {} })]));
    expect(ownsByUpdate(applied, ME)).toBe(false);
    expect((applied.metadata as { managedFields?: unknown }).managedFields).toBeUndefined();
  });
});

describe('keepOwnershipMarks: a job template edited by someone else', () => {
  const transform = keepOwnershipMarks(ME, compact);
  const mark = (o: KubeObject) => (o.metadata as { managedFields?: unknown }).managedFields;

  it('keeps a shared mark that the cached copy still reads as edited, beside the Update mark when both hold', () => {
    const edit = entry('kubectl-edit', 'Update', TEMPLATE, at('2026-11-28T10:05:00Z'));
    const applied = transform(object([entry(ME, 'Apply', { 'f:spec': {} }, at('2026-11-28T10:00:00Z')), edit]));
    const posted = transform(object([entry(ME, 'Update', { 'f:spec': {} }, at('2026-11-28T10:00:00Z')), edit]));
    expect(templateEditedByOthers(applied, ME)).toBe(true);
    expect(ownsByUpdate(applied, ME)).toBe(false);
    expect(templateEditedByOthers(posted, ME)).toBe(true);
    expect(ownsByUpdate(posted, ME)).toBe(true);
    expect(mark(transform(object([entry(ME, 'Apply', { 'f:spec': {} }, at('2026-11-28T09:00:00Z')), edit])))).toBe(mark(applied));
    // Not edited since: no mark at all.
    const current = transform(object([edit, entry(ME, 'Apply', { 'f:spec': {} }, at('2026-11-28T10:06:00Z'))]));
    expect(templateEditedByOthers(current, ME)).toBe(false);
    expect(mark(current)).toBeUndefined();
  });
});
