// Baseline process: the raw argon2id verification rate with the server's parameters,
// through the same argon2 package (libuv's thread pool, the same UV_THREADPOOL_SIZE).
// A login verifies one hash, so this is the ceiling of password logins on this machine.
//
// IPC protocol: sends {type: 'ready'} once a hash exists; on {type: 'run', durationS,
// concurrency} keeps `concurrency` verifications in flight for durationS seconds and
// answers {type: 'result', ok, errors, durationS, latenciesMs}.
// Env: ARGON2_MEMORY_KIB, ARGON2_TIME_COST (defaults: OWASP's 19456 and 2).
import argon2 from 'argon2';

const options = {
  type: argon2.argon2id as 2,
  memoryCost: Number(process.env.ARGON2_MEMORY_KIB ?? 19456),
  timeCost: Number(process.env.ARGON2_TIME_COST ?? 2),
  parallelism: 1,
};
const password = 'Bench-password-of-usual-length';

async function run(hash: string, durationS: number, concurrency: number) {
  const latenciesMs: number[] = [];
  let ok = 0;
  let errors = 0;
  const started = performance.now();
  const deadline = started + durationS * 1000;
  const worker = async () => {
    while (performance.now() < deadline) {
      const t0 = performance.now();
      const matches = await argon2.verify(hash, password);
      latenciesMs.push(performance.now() - t0);
      if (matches) ok++;
      else errors++;
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return { type: 'result', ok, errors, durationS: (performance.now() - started) / 1000, latenciesMs, errorStatuses: {} };
}

const hash = await argon2.hash(password, options);
process.on('message', (message: { type: string; durationS: number; concurrency: number }) => {
  if (message.type === 'run') void run(hash, message.durationS, message.concurrency).then((result) => process.send!(result));
});
process.on('SIGTERM', () => process.exit(0));
process.send!({ type: 'ready' });
