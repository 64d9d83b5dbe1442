import { runCannons, splitConnections } from '../lib/autocannon-load.ts';
import { targets } from '../lib/targets.ts';
import type { Plan, Scenario } from '../lib/types.ts';
import { clientCredentialsPlan, clientCredentialsRequest } from './client-credentials.ts';

/** The same connections as the one-instance line, split over two instances on one Redis. */
const twoInstances: Plan = {
  id: 'ours-cc-x2',
  label: 'two nopesight-auth processes, one Redis',
  processes: [targets.server('ES256'), targets.secondServer],
  async prepare(ctx) {
    const instances = await Promise.all(this.processes.map((key) => ctx.pool.get(key)));
    const request = clientCredentialsRequest(ctx);
    const shares = splitConnections(ctx.options.connections, instances.length);
    return (durationS) => runCannons(instances.map((p, i) => ({ url: p.url, connections: shares[i], ...request })), durationS);
  },
};

export const scaleOutScenario: Scenario = {
  id: 'scale-out',
  title: 'client_credentials, 2 instances, 1 Redis',
  subject: twoInstances,
  baseline: clientCredentialsPlan('ours-cc-x1', 'one nopesight-auth process', targets.server('ES256')),
  target: 1.6,
  ratioOf: 'rps',
  notes: ['On a 2-core machine that also runs the load generator and Redis, a second process has no idle core to use.'],
};
