import { features, librdkafkaVersion } from 'node-rdkafka';

// What rdkafka.conf may ask for depends on what librdkafka was built with; `make deps`
// installs every library its configure looks for (scripts/system-deps.sh), so that a site's
// build and CI's have the same features, whatever else the machine had installed.
it('librdkafka is built with TLS, every SASL mechanism, OIDC and every compression codec', () => {
  expect(librdkafkaVersion).toMatch(/^2\./);
  expect(features).toEqual(
    expect.arrayContaining(['ssl', 'sasl', 'sasl_plain', 'sasl_scram', 'sasl_gssapi', 'sasl_oauthbearer', 'oidc', 'gzip', 'snappy', 'lz4', 'zstd']),
  );
});
