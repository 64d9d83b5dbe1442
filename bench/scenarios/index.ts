import type { Scenario } from '../lib/types.ts';
import { clientCredentialsScenarios } from './client-credentials.ts';
import { introspectionScenario } from './introspection.ts';
import { refreshRotationScenario } from './refresh-rotation.ts';
import { scaleOutScenario } from './scale-out.ts';
import { tlsScenario } from './tls-new-connection.ts';

/**
 * Every scenario, in run order. To add one: write bench/scenarios/<name>.ts exporting a
 * Scenario (subject plan, baseline plan or published figure, target ratio, and `requires`
 * naming the endpoints it needs) and list it here.
 */
export const scenarios: Scenario[] = [
  ...clientCredentialsScenarios,
  introspectionScenario,
  refreshRotationScenario,
  scaleOutScenario,
  tlsScenario,
];

/** Hot paths of the issue that have no scenario yet, and why. Empty once every endpoint exists. */
export const pendingScenarios: { title: string; reason: string }[] = [
  { title: 'jwt-bearer service-account grant vs bare provider client_credentials (target ≥ 0.70)', reason: 'POST /v1/auth/service-account/token is not implemented yet (issue 5)' },
  { title: '/v1/auth/verify with an API key vs bare Koa hello (target ≥ 0.30)', reason: 'GET /v1/auth/verify and API keys are not implemented yet (issue 4)' },
  { title: '/v1/auth/verify with a JWT vs bare Koa hello (target ≥ 0.20)', reason: 'GET /v1/auth/verify is not implemented yet (issue 4)' },
  { title: '/v1/auth/login (argon2id) vs raw argon2id rate (target ≥ 0.80)', reason: 'POST /v1/auth/login is not implemented yet (issue 3)' },
];
