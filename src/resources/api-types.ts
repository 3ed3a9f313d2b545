/**
 * Shapes the control API sends that are not resource kinds: a function's log lines and what a
 * secret re-seal or key rotation did. The server and the CLI (a client of the API only) both use
 * them, so they live here, beside the kinds, and import nothing.
 */

/** One line of a function's log. */
export interface LogEntry {
  time: string;
  level: string;
  message: string;
  /** The revision number that wrote it. */
  revision?: number;
  requestId?: string;
  /** "function" for console output, "platform" for Kylix's own notes. */
  source: 'function' | 'platform';
  /** Set on the one line each invocation gets: whether it waited for an instance to start. */
  invocation?: { status: number; durationMs: number; cold: boolean; startupMs: number };
  /** The node that wrote it, on a fleet (where logs are shared). */
  node?: string;
}

/** A value that could not be re-sealed (its key is not in the ring, or it was altered). */
export interface UnreadableValue {
  namespace: string;
  secret: string;
  key: string;
  keyId: string;
  message: string;
}

/** What a re-seal did. */
export interface ResealResult {
  /** The key every value is sealed under now, save the unreadable ones. */
  currentKeyId: string;
  /** Secrets looked at, in every namespace. */
  secrets: number;
  /** Values sealed again under the current key. */
  resealed: number;
  /** Key ids that sealed values still name afterwards, sorted. */
  keyIdsInUse: string[];
  unreadable: UnreadableValue[];
}

/** What a key-file rotation did. */
export interface RotationResult extends ResealResult {
  previousKeyId: string;
  /** Key ids removed from the key file because no value uses them any more. */
  removedKeyIds: string[];
  /** The key ids left in the key file, current first. */
  keyIds: string[];
}
