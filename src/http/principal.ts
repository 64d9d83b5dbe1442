/** Who a request acts as, once its credential has been checked. */
export interface Principal {
  type: 'user' | 'client' | 'service_account' | 'api_key';
  /** The user id, client id or service-account id the credential speaks for. */
  subject: string;
  scopes: string[];
  /** Id of the credential itself: a token's jti or an API key's id. */
  credentialId: string;
  clientId?: string;
  /** The login (grant) a token belongs to, when it has one. */
  grantId?: string;
  /** Epoch seconds. */
  expiresAt?: number;
  /** Set for a DPoP-bound token presented with its proof: its challenges use that scheme (RFC 9449 §7.1). */
  scheme?: 'DPoP';
}

/** Subjects carry a type prefix (usr_, sa_); anything else is an OAuth client. */
export function subjectType(sub: string): Principal['type'] {
  if (sub.startsWith('usr_')) return 'user';
  if (sub.startsWith('sa_')) return 'service_account';
  return 'client';
}
