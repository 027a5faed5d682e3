// Writes the BackgroundTask CRD (crds/definition.ts, from the zod schemas in crds/schema.ts) as YAML.
//   node --experimental-strip-types crds/generate.ts          (npm run generate) rewrites the YAML
//   node --experimental-strip-types crds/generate.ts --check  exits 1 when the committed YAML is stale
import { readFileSync, writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { CRD_PATH } from './crd-path.ts';
import { customResourceDefinitionYaml } from './definition.ts';

/** Whether the CRD file at `path` is what the schema generates today. */
export function isCrdUpToDate(path: string = CRD_PATH): boolean {
  try {
    return readFileSync(path, 'utf8') === customResourceDefinitionYaml();
  } catch {
    return false; // a missing file is stale too
  }
}

function main(args: readonly string[]): number {
  if (args.includes('--check')) {
    if (isCrdUpToDate()) return 0;
    console.error(`${CRD_PATH} is stale: run \`npm run generate\` and commit the result.`);
    return 1;
  }
  writeFileSync(CRD_PATH, customResourceDefinitionYaml());
  console.log(`wrote ${CRD_PATH}`);
  return 0;
}

if (process.argv[1] !== undefined && fileURLToPath(import.meta.url) === process.argv[1]) {
  process.exitCode = main(process.argv.slice(2));
}
