// An existing topic against what [topics] asks for (docs/operations.md "jobcompd topics"):
// the one comparison behind `check-config --connect` and `topics create`.

import type { TopicsWanted } from '../config/daemon-conf';
import type { ProbedTopic } from '../producer/kafka-probe';

/** One line per difference; empty when the topic matches or [topics] asks nothing. */
export function topicMismatches(topic: ProbedTopic, wanted: TopicsWanted): string[] {
  if (!topic.exists) return [];
  const out: string[] = [];
  if (wanted.partitions !== undefined && topic.partitions !== wanted.partitions) {
    out.push(`topic ${topic.name} has ${topic.partitions} partition(s), [topics] Partitions asks for ${wanted.partitions}`);
  }
  if (wanted.replicationFactor !== undefined && topic.replicationFactor !== wanted.replicationFactor) {
    out.push(`topic ${topic.name} has replication factor ${topic.replicationFactor}, [topics] ReplicationFactor asks for ${wanted.replicationFactor}`);
  }
  return out;
}

/** How a probed topic reads in check-config and `topics describe`. */
export function topicLine(topic: ProbedTopic): string {
  if (!topic.exists) return `topic ${topic.name}: MISSING (or not visible to this principal)`;
  const under = topic.underReplicated > 0 ? `, ${topic.underReplicated} partition(s) under-replicated` : '';
  return `topic ${topic.name}: exists, ${topic.partitions} partition(s), replication factor ${topic.replicationFactor}${under}`;
}
