// The chart ships the generated CRD unchanged: hack/chart-crds.sh copies it, this says when it is stale.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { ROOT } from '../support/platform.ts';
import { CHART } from './chart-support.ts';

const yamlFiles = (dir: string) => readdirSync(dir).filter((f) => f.endsWith('.yaml')).sort();

describe('chart CRDs', () => {
  it('are the generated CRDs, file for file and byte for byte (run hack/chart-crds.sh when not)', () => {
    const generated = yamlFiles(join(ROOT, 'crds'));
    expect(generated.length).toBeGreaterThan(0);
    expect(yamlFiles(join(CHART, 'crds'))).toEqual(generated);
    for (const file of generated) {
      expect(readFileSync(join(CHART, 'crds', file), 'utf8'), file).toBe(readFileSync(join(ROOT, 'crds', file), 'utf8'));
    }
  });
});
