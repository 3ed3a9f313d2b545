/**
 * The worker thread that parses large API request bodies, so that parsing never holds the event
 * loop the gateway shares. It parses, checks depth and size (so an object over the limit is never
 * cloned back to the main thread), and answers with the value or a refusal.
 */
import { parentPort } from 'node:worker_threads';
import { KylixError } from '../errors.js';
import { checkObjectSize } from '../resources/validate.js';
import { parseBodyText, YamlProblem } from '../resources/yaml.js';

/** A body to parse. */
export interface ParseJob {
  id: number;
  text: string;
  format: 'yaml' | 'json';
}

/** The answer: the value, or a problem to report (never the text itself). */
export type ParseReply =
  | { id: number; json: string }
  | { id: number; syntax: string | null }
  | { id: number; refused: { code: 'ERR_MANIFEST_INVALID'; message: string; field: string; why: string } };

function parse(job: ParseJob): ParseReply {
  let value: unknown;
  try {
    value = parseBodyText(job.text, job.format);
  } catch (err) {
    return { id: job.id, syntax: err instanceof YamlProblem ? err.where : null };
  }
  let json: string;
  try {
    json = checkObjectSize(value);
  } catch (err) {
    if (!(err instanceof KylixError)) throw err;
    const cause = err.causes[0];
    return {
      id: job.id,
      refused: {
        code: 'ERR_MANIFEST_INVALID',
        message: err.message,
        field: cause?.field ?? '(root)',
        why: cause?.message ?? '',
      },
    };
  }
  // As JSON: JSON.parse on the main thread is quicker than structured clone's copy of the object.
  return { id: job.id, json };
}

parentPort?.on('message', (job: ParseJob) => {
  parentPort?.postMessage({ started: job.id });
  parentPort?.postMessage(parse(job));
});
parentPort?.postMessage({ ready: true });
