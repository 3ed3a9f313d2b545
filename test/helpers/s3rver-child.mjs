// Runs s3rver (a fake S3 server) in a child process for the Bucket tests: it prints its port as a
// JSON line and exits when its stdin closes (the test process ended, however it ended).
// The parent starts it with --openssl-legacy-provider: s3rver signs its continuation tokens with DES,
// which OpenSSL 3 only offers through the legacy provider.
import S3rver from 's3rver';

const server = new S3rver({ address: '127.0.0.1', port: 0, silent: true, directory: process.argv[2] });
const { port } = await server.run();
process.stdout.write(`${JSON.stringify({ port })}\n`);
process.stdin.on('end', () => {
  server.close().finally(() => process.exit(0));
});
process.stdin.resume();
