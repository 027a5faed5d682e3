// Where the generated CRD YAML lives. Its own module so that readers of the YAML (the tests' CRD
// installer, the structural check) do not load the zod schema that generates it.
import { fileURLToPath } from 'node:url';
import { API_GROUP, PLURAL } from './constants.ts';

export const CRD_PATH = fileURLToPath(new URL(`./${API_GROUP}_${PLURAL}.yaml`, import.meta.url));
