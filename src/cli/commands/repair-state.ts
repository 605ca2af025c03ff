// `jobcompd repair-state`: rebuild a damaged state file from what SQLite can still read.

import type { LoadOptions } from '../../config/daemon-conf';
import { loadDaemonConfig } from '../../config/daemon-conf';
import { repairStateFile } from '../../outbox/repair';

export async function runRepairState(opts: LoadOptions): Promise<number> {
  const cfg = loadDaemonConfig(opts);
  const r = repairStateFile(cfg.stateDir);
  process.stdout.write(
    [
      `rebuilt ${cfg.stateDir}/jobcompd.sqlite from the rows that could be read:`,
      `  records waiting for Kafka: ${r.outbox.read} recovered, ${r.outbox.unreadable} row id(s) unreadable (some may be records already delivered)`,
      `  quarantine:                ${r.quarantine.read} recovered, ${r.quarantine.unreadable} row id(s) unreadable`,
      r.hookJournalMark === 'kept'
        ? '  hook journal:              its mark kept (the next start commits the entries after it)'
        : '  hook journal:              no mark could be read (entries left in the hook journal, if any, are not committed at the next start)',
      `the damaged file is kept as ${r.damagedKeptAs}`,
      '',
    ].join('\n'),
  );
  return 0;
}
