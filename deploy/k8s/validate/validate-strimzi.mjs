// Validates the Strimzi resources of rendered manifests offline, against the operator's own schemas
// (@kubernetes-models/strimzi-kafka-operator). Usage: node validate-strimzi.mjs RENDERED.yaml...
// Exits 1 on the first file with an invalid resource, and when a file holds no Kafka at all
// (a render that lost its Kafka should not pass quietly).
import { readFileSync } from "node:fs";
import { loadAll } from "js-yaml";
import { Kafka, KafkaNodePool, KafkaTopic } from "@kubernetes-models/strimzi-kafka-operator/kafka.strimzi.io/v1beta2";

const MODELS = { Kafka, KafkaNodePool, KafkaTopic };
let failed = false;
for (const file of process.argv.slice(2)) {
  const seen = {};
  const failedBefore = failed;
  for (const doc of loadAll(readFileSync(file, "utf8"))) {
    if (!doc || !String(doc.apiVersion).startsWith("kafka.strimzi.io/")) continue;
    const name = `${doc.kind}/${doc.metadata?.name}`;
    const Model = MODELS[doc.kind];
    if (doc.apiVersion !== "kafka.strimzi.io/v1beta2" || !Model) {
      console.error(`${file}: ${name}: no schema here for ${doc.apiVersion} ${doc.kind}`);
      failed = true;
      continue;
    }
    try {
      new Model(doc).validate();
      seen[doc.kind] = (seen[doc.kind] ?? 0) + 1;
    } catch (error) {
      console.error(`${file}: ${name}: ${error.message}`);
      failed = true;
    }
  }
  for (const kind of Object.keys(MODELS)) {
    if (!seen[kind]) {
      console.error(`${file}: no ${kind} rendered`);
      failed = true;
    }
  }
  if (failed === failedBefore) console.log(`${file}: ${Object.entries(seen).map(([k, n]) => `${n} ${k}`).join(", ")} valid`);
}
process.exit(failed ? 1 : 0);
