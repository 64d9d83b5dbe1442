import type { Scenario } from '../lib/types.ts';
import { clientCredentialsScenarios } from './client-credentials.ts';
import { introspectionScenario } from './introspection.ts';
import { firstPartyRefreshScenario, refreshRotationScenario } from './refresh-rotation.ts';
import { verifyApiKeyScenario, verifyJwtScenario } from './verify.ts';
import { loginScenario } from './login.ts';
import { serviceAccountRs256Scenario, serviceAccountScenario } from './service-account.ts';
import { scaleOutScenario } from './scale-out.ts';
import { tlsScenarios } from './tls-new-connection.ts';

/**
 * Every scenario, in run order. To add one: write bench/scenarios/<name>.ts exporting a
 * Scenario (subject plan, baseline plan or published figure, target ratio, and `requires`
 * naming the endpoints it needs) and list it here.
 */
export const scenarios: Scenario[] = [
  ...clientCredentialsScenarios,
  introspectionScenario,
  refreshRotationScenario,
  firstPartyRefreshScenario,
  verifyApiKeyScenario,
  verifyJwtScenario,
  serviceAccountScenario,
  serviceAccountRs256Scenario,
  loginScenario,
  scaleOutScenario,
  ...tlsScenarios,
];

/** Hot paths of the issue that have no scenario yet, and why. Empty once every endpoint exists. */
export const pendingScenarios: { title: string; reason: string }[] = [];
