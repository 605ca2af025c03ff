// The upstream librdkafka file must name the real cluster, not jobcompd's own Kafka
// listener: a loop would acknowledge each record to the plugin and then send it back to
// jobcompd for ever (docs/kafka-listener.md#two-configuration-files).

import { ConfigCodes, ConfigError } from '../errors';
import type { RdkafkaProperty } from './jobcomploc-file';
import { isLoopback, type ListenAddress } from './daemon-conf';

const ANY_ADDRESS = new Set(['0.0.0.0', '::', '']);

/** host:port of each broker in a bootstrap.servers value ("host:port,PLAINTEXT://host:port,[v6]:port"). */
function brokerAddresses(value: string): { host: string; port: number }[] {
  return value
    .split(',')
    .map((s) => s.trim().replace(/^[A-Za-z_]+:\/\//, ''))
    .filter((s) => s !== '')
    .map((s) => {
      const m = /^(?:\[([^\]]+)\]|([^:]*)):(\d+)$/.exec(s);
      // librdkafka's default port when none is given
      return m === null ? { host: s, port: 9092 } : { host: m[1] ?? m[2] ?? '', port: Number(m[3]) };
    });
}

function sameListener(broker: { host: string; port: number }, listen: ListenAddress): boolean {
  if (broker.port !== listen.port) return false;
  if (broker.host === listen.host) return true;
  // the listener is on loopback: any loopback name of this host reaches it
  return isLoopback(broker.host) && (isLoopback(listen.host) || ANY_ADDRESS.has(listen.host));
}

/** Throws E_CONFIG_BAD_VALUE (exit 78) at the file, line and key of a broker list that names the listener. */
export function checkUpstreamIsNotListener(file: string, properties: ReadonlyMap<string, RdkafkaProperty>, listen: ListenAddress | undefined): void {
  if (listen === undefined) return;
  for (const key of ['bootstrap.servers', 'metadata.broker.list']) {
    const p = properties.get(key);
    if (p === undefined) continue;
    const loop = brokerAddresses(p.value).find((b) => sameListener(b, listen));
    if (loop !== undefined) {
      throw new ConfigError(
        ConfigCodes.badValue,
        { file, line: p.line, key: p.key },
        `${loop.host}:${loop.port} is jobcompd's own [kafka] Listen: this file must name the upstream Kafka cluster; the plugin's JobCompLoc file is the one that points at jobcompd`,
      );
    }
  }
}
