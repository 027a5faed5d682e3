/**
 * Entry point of dist/task-runner.mjs. The V8 compile cache is enabled before anything else
 * is loaded (NODE_COMPILE_CACHE, or the OS temp folder), which is why the CLI is imported
 * dynamically below.
 */
import { enableCompileCache } from 'node:module';

enableCompileCache();
const { main } = await import('./cli.ts');
process.exit(await main(process.argv));
