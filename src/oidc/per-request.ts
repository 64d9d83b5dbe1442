/**
 * A lookup remembered for the length of one request: the provider asks for the same user
 * more than once while answering a token request (the account, then the token's scopes),
 * and each ask was a store round trip. Without a request (a token minted outside one) it
 * simply looks up again.
 */
export function perRequest<V>(load: (id: string) => Promise<V>): (request: object | undefined, id: string) => Promise<V> {
  const byRequest = new WeakMap<object, Map<string, Promise<V>>>();
  return (request, id) => {
    if (!request) return load(id);
    let seen = byRequest.get(request);
    if (!seen) {
      seen = new Map();
      byRequest.set(request, seen);
    }
    let value = seen.get(id);
    if (!value) {
      value = load(id);
      seen.set(id, value);
    }
    return value;
  };
}
