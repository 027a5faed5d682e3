import { describe, expect, it } from 'vitest';
import { objectKey, splitKey, taskKeyOf, taskOwnerReference, TASK_NAME_LABEL } from '../../operator/kube/keys.ts';
import type { KubeObject } from '../../operator/kube/types.ts';

const taskRef = (name: string, controller = true) => ({ apiVersion: 'workers.personal-assistant.io/v1alpha1', kind: 'BackgroundTask', name, uid: `uid-${name}`, controller });
const cronRef = (name: string, uid: string) => ({ apiVersion: 'batch/v1', kind: 'CronJob', name, uid, controller: true });

describe('objectKey / splitKey', () => {
  it('round-trips namespaced and cluster-scoped keys', () => {
    expect(objectKey({ metadata: { namespace: 'ns', name: 'a' } })).toBe('ns/a');
    expect(objectKey({ metadata: { name: 'node1' } })).toBe('node1');
    expect(splitKey('ns/a')).toEqual({ namespace: 'ns', name: 'a' });
    expect(splitKey('node1')).toEqual({ name: 'node1' });
  });

  it('rejects malformed keys and nameless objects', () => {
    expect(() => splitKey('/a')).toThrow(/malformed/);
    expect(() => splitKey('a/')).toThrow(/malformed/);
    expect(() => splitKey('a/b/c')).toThrow(/malformed/);
    expect(() => objectKey({ kind: 'Pod', metadata: {} })).toThrow(/no metadata.name/);
  });
});

describe('taskKeyOf', () => {
  it('follows an owner reference to a BackgroundTask', () => {
    const cronJob: KubeObject = { kind: 'CronJob', metadata: { namespace: 'ns', name: 'email-digest', ownerReferences: [taskRef('digest')] } };
    expect(taskKeyOf(cronJob)).toBe('ns/digest');
  });

  it('prefers the controller reference among several task owners', () => {
    const obj: KubeObject = { metadata: { namespace: 'ns', name: 'x', ownerReferences: [taskRef('other', false), taskRef('mine', true)] } };
    expect(taskKeyOf(obj)).toBe('ns/mine');
  });

  it('follows Job → CronJob → task when a CronJob lookup is given, checking the UID', () => {
    const cronJob: KubeObject = { kind: 'CronJob', metadata: { namespace: 'ns', name: 'cj', uid: 'cj-uid', ownerReferences: [taskRef('digest')] } };
    const lookup = (ns: string, name: string) => (ns === 'ns' && name === 'cj' ? cronJob : undefined);
    const jobOf = (uid: string): KubeObject => ({ kind: 'Job', metadata: { namespace: 'ns', name: 'cj-123', ownerReferences: [cronRef('cj', uid)] } });
    expect(taskKeyOf(jobOf('cj-uid'), lookup)).toBe('ns/digest');
    // A CronJob of the same name but another incarnation is not the owner.
    expect(taskKeyOf(jobOf('stale-uid'), lookup)).toBeUndefined();
    expect(taskKeyOf(jobOf('cj-uid'))).toBeUndefined();
  });

  it('falls back to the task-name label (pods)', () => {
    const pod: KubeObject = {
      kind: 'Pod',
      metadata: { namespace: 'ns', name: 'p', labels: { [TASK_NAME_LABEL]: 'digest' }, ownerReferences: [{ apiVersion: 'batch/v1', kind: 'Job', name: 'j', uid: 'j' }] },
    };
    expect(taskKeyOf(pod)).toBe('ns/digest');
  });

  it('returns undefined for objects that belong to no task', () => {
    expect(taskKeyOf({ metadata: { namespace: 'ns', name: 'x' } })).toBeUndefined();
    expect(taskKeyOf({ metadata: { name: 'cluster-scoped', labels: { [TASK_NAME_LABEL]: 'digest' } } })).toBeUndefined();
    const foreign: KubeObject = { metadata: { namespace: 'ns', name: 'x', ownerReferences: [{ apiVersion: 'example.com/v1', kind: 'BackgroundTask', name: 'imposter', uid: 'u' }] } };
    expect(taskKeyOf(foreign)).toBeUndefined();
  });
});

describe('taskOwnerReference', () => {
  it('makes a controller reference that blocks owner deletion', () => {
    expect(taskOwnerReference({ metadata: { name: 'digest', uid: 'u1' } })).toEqual({
      apiVersion: 'workers.personal-assistant.io/v1alpha1',
      kind: 'BackgroundTask',
      name: 'digest',
      uid: 'u1',
      controller: true,
      blockOwnerDeletion: true,
    });
    expect(() => taskOwnerReference({ metadata: { name: 'digest' } })).toThrow(/uid/);
  });
});
