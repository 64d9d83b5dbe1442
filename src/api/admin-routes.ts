import { createAdminServices } from '../admin-services.ts';
import type { Deps } from '../deps.ts';
import { adminAuditRoutes } from './admin-audit-routes.ts';
import { adminClientRoutes } from './admin-clients-routes.ts';
import { adminSettingsRoutes } from './admin-settings-routes.ts';
import { adminUserRoutes } from './admin-users-routes.ts';
import { adminServiceAccountRoutes } from './service-account-admin-routes.ts';
import { inviteRoutes } from './invite-routes.ts';
import type { RouteSpec } from './route.ts';

/** The management API under /v1/admin, and the invitation endpoint its links lead to. */
export function adminRoutes(deps: Deps): RouteSpec[] {
  const admin = createAdminServices(deps);
  return [
    ...adminUserRoutes(deps, admin),
    ...adminClientRoutes(deps, admin),
    ...adminServiceAccountRoutes(deps, admin),
    ...adminSettingsRoutes(deps),
    ...adminAuditRoutes(deps, admin),
    ...inviteRoutes(admin),
  ];
}
