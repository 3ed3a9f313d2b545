/** Opens the audit log the installation's state store implies: a file embedded, a table on a fleet. */
import { join } from 'node:path';
import type { Installation } from '../../config/installation.js';
import { type AuditLog, FileAuditLog } from './audit.js';

/** Opens the audit log beside the state store: the file, or the PostgreSQL table. */
export async function openAuditLog(
  state: Installation['backends']['state'],
  dataDir: string,
): Promise<AuditLog> {
  if (state.provider === 'postgres') {
    const { openPostgresAuditLog } = await import('./audit-postgres.js');
    return openPostgresAuditLog(state.url, state.schema ?? 'kylix');
  }
  return FileAuditLog.open(join(dataDir, 'audit'));
}
