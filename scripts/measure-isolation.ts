// Prints the isolation measurements as JSON: node --import tsx scripts/measure-isolation.ts [seconds]
import { measureIsolation } from '../test/helpers/measure-isolation.js';

console.log(JSON.stringify(await measureIsolation({ seconds: Number(process.argv[2] ?? 5) }), null, 2));
